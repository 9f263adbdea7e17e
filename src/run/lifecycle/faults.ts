import type { Settings } from '../../config/settings.js';

/**
 * The named points of a run's lifecycle where a test may make the process die or freeze (the crash
 * matrix, test/crash.test.ts; the binding model, test/binding-model/). The names are the values of
 * the test-only setting DROPSHIP_TEST_CRASH_AT (src/config/settings.ts), so a test can arm a point
 * in a child process or a Lambda instance through its environment.
 */
export type FaultPoint = NonNullable<Settings['DROPSHIP_TEST_CRASH_AT']>;

/**
 * An injected fault hook: the lifecycle says where it is, and knows nothing of how (or whether) a
 * test acts on it. Production wiring gets `noFaults`; the crash matrix gets `crashFaults`
 * (src/run/lifecycle/crash.ts). Built once by the wiring (src/run/wiring.ts) and passed down with the
 * drivers' deps; a driver without one uses `noFaults`.
 */
export interface Faults {
  /**
   * The run reached `point`. Resolves at once unless a test armed the point: then the process dies
   * here or the promise never settles (a frozen owner — its task stays claimed, its lease runs on).
   */
  at(point: FaultPoint): Promise<void>;
  /**
   * For a point reached inside a synchronous callback (mid-copy: the COPY's first rows) that cannot
   * wait: true when the caller must stop there — it stops its work, then awaits `at(point)`, which
   * never returns. A hook that kills the process does so inside this call. False in production.
   */
  stops(point: FaultPoint): boolean;
}

/** Production: every point passes. */
export const noFaults: Faults = Object.freeze({
  at: (): Promise<void> => Promise.resolve(),
  stops: (): boolean => false,
});
