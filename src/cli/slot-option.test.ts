import { describe, expect, it } from 'vitest';
import { exitCodeFor } from './main.js';
import { requireConfiguredSlot, requireSlotFormat } from './slot-option.js';

const settings = { DROPSHIP_PAID_SLOTS: '04:00,15:00', DROPSHIP_FREE_SLOTS: '04:00' };

describe('--slot', () => {
  it('takes a configured slot; refuses another (listing the configured ones) and a malformed one, exit 2', () => {
    expect(requireConfiguredSlot('15:00', settings)).toBe('15:00');
    const refused = (() => {
      try {
        requireConfiguredSlot('05:00', settings);
      } catch (e) {
        return e;
      }
    })();
    expect((refused as Error).message).toContain('slot 05:00 is not configured: the configured slots are 04:00, 15:00');
    expect(exitCodeFor(refused)).toBe(2);
    expect(() => requireSlotFormat('04:00,15:00')).toThrow('--slot takes HH:MM (UTC)');
    expect(() => requireSlotFormat('25:00')).toThrow('--slot takes HH:MM (UTC)');
    expect(requireSlotFormat('05:00')).toBe('05:00');
  });
});
