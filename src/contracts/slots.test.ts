import { describe, expect, it } from 'vitest';
import { allSlots, slotListSchema, slotsByPlan } from './slots.js';

describe('plans and slots', () => {
  it('reads the slots per plan from the two settings lists', () => {
    // Prepare / Act
    const slots = slotsByPlan({ DROPSHIP_PAID_SLOTS: '18:00,06:30', DROPSHIP_FREE_SLOTS: '06:30' });
    // Assess
    expect(slots).toEqual({ paid: ['18:00', '06:30'], free: ['06:30'] });
    expect(allSlots(slots)).toEqual(['06:30', '18:00']);
  });

  it('refuses a slot list that is not HH:MM[,HH:MM…]', () => {
    expect(slotListSchema.safeParse('04:00,15:00').success).toBe(true);
    expect(slotListSchema.safeParse('4:00').success).toBe(false);
    expect(slotListSchema.safeParse('04:00,').success).toBe(false);
  });
});
