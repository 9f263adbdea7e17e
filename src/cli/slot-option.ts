import { allSlots, slotListSchema, slotsByPlan } from '../contracts/slots.js';
import { UsageError } from './usage.js';

type SlotSettings = { DROPSHIP_PAID_SLOTS: string; DROPSHIP_FREE_SLOTS: string };

/** `--slot`'s value, written HH:MM (UTC), else a UsageError (exit 2). */
export function requireSlotFormat(slot: string): string {
  if (!slotListSchema.safeParse(slot).success || slot.includes(','))
    throw new UsageError(`--slot takes HH:MM (UTC), not "${slot}"`);
  return slot;
}

/**
 * `--slot`'s value when it is one of the configured slots (DROPSHIP_PAID_SLOTS, DROPSHIP_FREE_SLOTS); else a
 * UsageError (exit 2) listing them — a slot nobody is exported in is a typo or a wrong configuration, never
 * "nobody is due".
 */
export function requireConfiguredSlot(slot: string, settings: SlotSettings): string {
  requireSlotFormat(slot);
  const configured = allSlots(slotsByPlan(settings));
  if (!configured.includes(slot))
    throw new UsageError(
      `slot ${slot} is not configured: the configured slots are ${configured.join(', ')} (DROPSHIP_PAID_SLOTS=${settings.DROPSHIP_PAID_SLOTS}, DROPSHIP_FREE_SLOTS=${settings.DROPSHIP_FREE_SLOTS})`,
    );
  return slot;
}
