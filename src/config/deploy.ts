import { allSlots, type Plan, slotCron, slotsByPlan } from '../contracts/slots.js';
import { ConfigError, loadSettings } from './settings.js';

/**
 * What serverless.yml reads at deploy time, from the same settings schema every function and the
 * CLI validate (deploy/settings.cjs is its door): the schedule's crons and the drift check's — an
 * hour before each slot — come from DROPSHIP_PAID_SLOTS / DROPSHIP_FREE_SLOTS, and the same two
 * values are set in the functions' environment, so the slots that fire are the slots whose accounts
 * are due. An invalid setting stops the deploy with the same message the CLI gives.
 */
export const CHECK_MINUTES_BEFORE_SLOT = 60;

interface ScheduleEvent {
  schedule: { rate: string; description: string; input?: Record<string, unknown> };
}

export function deployConfig(env: NodeJS.ProcessEnv = process.env) {
  const s = loadSettings(env);
  // The task queue's mapping cannot hand messages to fewer than 2 workers (SQS maximumConcurrency ≥ 2): with 1
  // reserved, its second invocation would always be throttled, each a receive toward the dead-letter queue.
  if (s.DROPSHIP_WORKER_CONCURRENCY < 2)
    throw new ConfigError(
      'Invalid configuration:\n  - DROPSHIP_WORKER_CONCURRENCY: at least 2 for a deployment (the task queue hands messages to 2 workers at least)',
    );
  const byPlan = slotsByPlan(s);
  const plansOf = (slot: string) =>
    (Object.keys(byPlan) as Plan[]).filter((p) => byPlan[p].includes(slot)).join(' and ');
  const slots = allSlots(byPlan);
  const scheduleEvents: ScheduleEvent[] = slots.map((slot) => ({
    schedule: { rate: slotCron(slot), description: `${slot} UTC slot (${plansOf(slot)} plans)` },
  }));
  // Only the drift checks: run outcomes and webhooks left undelivered are the sweeper's (every 5 minutes).
  const checkEvents: ScheduleEvent[] = slots.map((slot) => ({
    schedule: {
      rate: slotCron(slot, -CHECK_MINUTES_BEFORE_SLOT),
      description: `drift checks before the ${slot} UTC slot`,
    },
  }));
  return {
    paidSlots: s.DROPSHIP_PAID_SLOTS,
    freeSlots: s.DROPSHIP_FREE_SLOTS,
    scheduleEvents,
    checkEvents,
    workerConcurrency: s.DROPSHIP_WORKER_CONCURRENCY,
    /**
     * The task queue mapping's maximumConcurrency (SQS allows 2–1,000): the pollers hand messages to no more workers
     * than the reserved concurrency. Without it the mapping scales its pollers past the reserved concurrency, the
     * invocations it cannot make are throttled and each counts as a receive toward the dead-letter queue (AWS:
     * "Lambda SQS scaling" — set maximum concurrency ≤ reserved concurrency).
     */
    workerPollers: Math.min(1000, s.DROPSHIP_WORKER_CONCURRENCY),
    securityGroupId: s.DROPSHIP_VPC_SECURITY_GROUP_ID ?? 'sg-0000000000000000a',
    subnetA: s.DROPSHIP_VPC_SUBNET_A ?? 'subnet-0000000000000000a',
    subnetB: s.DROPSHIP_VPC_SUBNET_B ?? 'subnet-0000000000000000b',
    alarmEmail: s.DROPSHIP_ALARM_EMAIL ?? '',
    /** Empty: no quick-create link in the setup kit (an empty variable is an unset setting). */
    kitTemplateBaseUrl: s.DROPSHIP_KIT_TEMPLATE_BASE_URL ?? '',
  };
}
