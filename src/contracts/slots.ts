import { z } from 'zod';

/**
 * Plans and slots — the one home of both. A plan decides which daily slots (UTC `HH:MM`) an
 * account is exported in; the slots per plan are settings (DROPSHIP_PAID_SLOTS,
 * DROPSHIP_FREE_SLOTS: src/config/settings.ts validates them with `slotListSchema`), read by the
 * schedule (src/schedule/slots.ts), `export --due`, `notify check` and the drift check.
 */
import { PLANS, type Plan } from './plans.js';

export { PLANS, type Plan };

export type SlotsByPlan = Record<Plan, string[]>;

/** The product's default: paid accounts twice a day, free accounts once. */
export const DEFAULT_SLOTS: SlotsByPlan = { paid: ['04:00', '15:00'], free: ['04:00'] };

/** A comma-separated list of UTC slot times, as the settings hold it. */
export const slotListSchema = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d(,([01]\d|2[0-3]):[0-5]\d)*$/, 'HH:MM[,HH:MM…] (UTC, 00:00–23:59)');

/** The slots per plan from the settings' two lists. */
export function slotsByPlan(settings: { DROPSHIP_PAID_SLOTS: string; DROPSHIP_FREE_SLOTS: string }): SlotsByPlan {
  return { paid: settings.DROPSHIP_PAID_SLOTS.split(','), free: settings.DROPSHIP_FREE_SLOTS.split(',') };
}

/** Every configured slot, sorted (what the schedule fires). */
export function allSlots(slots: SlotsByPlan): string[] {
  return [...new Set(Object.values(slots).flat())].sort();
}

/**
 * The EventBridge cron expression that fires daily at `slot` (UTC) shifted by `offsetMinutes`
 * (negative: before it; wraps around midnight): `cron(0 4 * * ? *)` for 04:00.
 */
export function slotCron(slot: string, offsetMinutes = 0): string {
  const [h, m] = slot.split(':').map(Number) as [number, number];
  const t = (((h * 60 + m + offsetMinutes) % 1440) + 1440) % 1440;
  return `cron(${t % 60} ${Math.floor(t / 60)} * * ? *)`;
}
