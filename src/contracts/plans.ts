/**
 * The plans an account can be on (zod-free, so the CLI's option choices load nothing else; the
 * slots each plan is exported in are src/contracts/slots.ts).
 */
export const PLANS = ['paid', 'free'] as const;
export type Plan = (typeof PLANS)[number];
