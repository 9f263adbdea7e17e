import { describe, expect, it } from 'vitest';
import { DEFAULT_SLOTS } from '../contracts/slots.js';
import { demoSlot } from './demo-command.js';

describe('the demo’s slot', () => {
  it('is the first configured slot both demo plans are due in', () => {
    expect(demoSlot(DEFAULT_SLOTS, ['paid', 'free'])).toBe('04:00');
    expect(demoSlot({ paid: ['05:00', '15:00'], free: ['15:00'] }, ['paid', 'free'])).toBe('15:00');
  });

  it('else the first slot any of them is due in', () => {
    expect(demoSlot({ paid: ['06:00'], free: ['05:00'] }, ['paid', 'free'])).toBe('05:00');
  });
});
