import type { Settings } from '../../config/settings.js';
import { type FaultPoint, type Faults, noFaults } from './faults.js';

/**
 * The crash matrix's fault hook (test/crash.test.ts, test/binding-model/): the point named by the
 * test-only setting DROPSHIP_TEST_CRASH_AT SIGKILLs the process (mode `kill`: the CLI in a child
 * process) or freezes the caller for good (mode `hang`: a Lambda handler the test abandons before
 * terminating its database connections). Every other point passes. The wiring (src/run/wiring.ts)
 * chooses it only when the setting is present; never set it in production.
 */
export type CrashPoint = FaultPoint;

type Listener = (point: CrashPoint) => void;
const listeners = new Set<Listener>();

/** Tests: called when a hanging crash point is reached (the handler is then abandoned). */
export function onCrashPoint(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The hook the setting asks for: `noFaults` when DROPSHIP_TEST_CRASH_AT is absent. */
export function crashFaults(settings: Pick<Settings, 'DROPSHIP_TEST_CRASH_AT' | 'DROPSHIP_TEST_CRASH_MODE'>): Faults {
  const armed = settings.DROPSHIP_TEST_CRASH_AT;
  if (armed === undefined) return noFaults;
  const kill = settings.DROPSHIP_TEST_CRASH_MODE === 'kill';
  return {
    stops(point) {
      if (point !== armed) return false;
      if (kill) process.kill(process.pid, 'SIGKILL');
      return true;
    },
    async at(point) {
      if (point !== armed) return;
      if (kill) process.kill(process.pid, 'SIGKILL');
      for (const fn of listeners) fn(point);
      await new Promise<never>(() => {});
    },
  };
}
