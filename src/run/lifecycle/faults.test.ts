import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../config/settings.js';
import { Wiring } from '../wiring.js';
import { type CrashPoint, crashFaults, onCrashPoint } from './crash.js';
import { type FaultPoint, type Faults, noFaults } from './faults.js';

const POINTS: FaultPoint[] = [
  'after-open-run',
  'during-send',
  'after-send',
  'mid-copy',
  'after-last-task',
  'before-receipt-put',
  'after-receipt-put',
];

/** Settles within `ms`: 'passed', or 'held' when the point never returns. */
async function settles(faults: Faults, point: FaultPoint, ms = 50): Promise<'passed' | 'held'> {
  return Promise.race([
    faults.at(point).then(() => 'passed' as const),
    new Promise<'held'>((r) => setTimeout(() => r('held'), ms)),
  ]);
}

describe('the fault hook', () => {
  it('production default: every point passes at once and nothing stops', async () => {
    for (const point of POINTS) {
      expect(await settles(noFaults, point)).toBe('passed');
      expect(noFaults.stops(point)).toBe(false);
    }
  });

  it('the wiring hands the drivers the no-op unless the test-only setting arms a point', () => {
    expect(new Wiring({ settings: loadSettings({}) }).faults).toBe(noFaults);
    expect(crashFaults(loadSettings({}))).toBe(noFaults);
    const armed = new Wiring({ settings: loadSettings({ DROPSHIP_TEST_CRASH_AT: 'mid-copy' }) }).faults;
    expect(armed).not.toBe(noFaults);
    const injected: Faults = { at: async () => {}, stops: () => false };
    expect(
      new Wiring({ settings: loadSettings({ DROPSHIP_TEST_CRASH_AT: 'mid-copy' }), faults: injected }).faults,
    ).toBe(injected);
  });

  it('the crash matrix hook (hang mode) holds only at its point, and says so', async () => {
    const faults = crashFaults({ DROPSHIP_TEST_CRASH_AT: 'after-send', DROPSHIP_TEST_CRASH_MODE: 'hang' });
    const reached: CrashPoint[] = [];
    const off = onCrashPoint((p) => reached.push(p));
    try {
      for (const point of POINTS.filter((p) => p !== 'after-send')) {
        expect(await settles(faults, point)).toBe('passed');
        expect(faults.stops(point)).toBe(false);
      }
      expect(reached).toEqual([]);
      expect(faults.stops('after-send')).toBe(true);
      expect(await settles(faults, 'after-send')).toBe('held');
      expect(reached).toEqual(['after-send']);
    } finally {
      off();
    }
  });
});
