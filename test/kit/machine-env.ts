/**
 * The part of this process's environment that belongs to the machine, not to dropship: PATH, HOME,
 * and the clock and time zone (TZ; libfaketime's LD_PRELOAD/FAKETIME under `npm run test:clock`), so
 * a child process lives in the same time as the test that started it.
 */
export function machineEnv(): Record<string, string> {
  const keys = ['PATH', 'HOME', 'TZ', 'LD_PRELOAD', 'FAKETIME', 'DONT_FAKE_MONOTONIC', 'FAKETIME_DONT_RESET'];
  return Object.fromEntries(keys.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]])));
}
