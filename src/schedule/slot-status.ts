import type { Destination } from '../accounts/destination.js';
import type { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { slotsByPlan } from '../contracts/slots.js';
import { emfLine } from '../log/metrics.js';
import { describeFailure } from '../notify/reasons.js';
import { StatusStore } from '../notify/store.js';
import type { Ledger } from '../store/ledger/ledger.js';
import type { Run } from '../store/ledger/rows.js';

/**
 * The operator's view of one slot of one day (`dropship slot status`, and the sweeper's EMF gauges):
 * how many destinations are due, and where each of them is — succeeded, failed (the customer's side:
 * a removed role, a missing bucket… — or ours), still running, stuck past its bound, missed, not
 * opened yet — plus the paused destinations and the longest runs. Scheduled runs only: one per
 * account, slot and day (a run that gave its slot back — cancelled by a change of its destination — is not the
 * slot's run: the account is "not opened" until the catch-up opens the slot again).
 */
export interface SlotStatus {
  slot: string;
  date: string;
  /** Enabled destinations whose plan has this slot (as registered now). */
  due: number;
  succeeded: number;
  failed: { customer: number; ours: number; byCode: Record<string, number> };
  running: number;
  /** Active runs whose owner has gone silent past DROPSHIP_RUN_STALE_SECONDS: the sweeper ends them. */
  stuck: number;
  cancelled: number;
  /** Recorded as missed: the slot was never opened for them within the catch-up window. */
  missed: number;
  /** Due, and no run of this slot and day exists (yet). */
  notOpened: string[];
  paused: { accountId: string; since: Date }[];
  longest: { runId: string; accountId: string; status: string; seconds: number }[];
}

/** A run the sweeper recorded as missed (src/schedule/slots.ts: owner 'sweeper', never started). */
function isMissed(r: Run): boolean {
  return r.status === 'failed' && r.owner === 'sweeper' && r.startedMicros === 0n;
}

export async function slotStatus(
  deps: { ledger: Ledger; registry: Registry; settings: Settings },
  q: { slot: string; date: string; now: Date },
): Promise<SlotStatus> {
  const { ledger, registry, settings } = deps;
  const byPlan = slotsByPlan(settings);
  const [registered, runs, paused, active] = await Promise.all([
    registry.list(),
    ledger.listRuns({ slot: q.slot, slotDate: q.date, limit: 1_000_000 }),
    new StatusStore(ledger.pool).paused(),
    ledger.activeRuns(),
  ]);
  const scheduled = runs.filter((r) => r.trigger === 'schedule' && !r.slotReleased);
  // The due destinations are the registry's enabled ones whose plan has the slot (Registry.due, read once here).
  const due = registered.filter((d) => d.enabled && byPlan[d.plan].includes(q.slot));
  const byAccount = new Map<string, Destination>(registered.map((d) => [d.accountId, d]));
  const silent = new Map(active.map((a) => [a.runId, a.ownerGone || a.silentSeconds > a.staleSeconds]));
  const s: SlotStatus = {
    slot: q.slot,
    date: q.date,
    due: due.length,
    succeeded: 0,
    failed: { customer: 0, ours: 0, byCode: {} },
    running: 0,
    stuck: 0,
    cancelled: 0,
    missed: 0,
    notOpened: [],
    paused: [...paused].map(([accountId, since]) => ({ accountId, since })),
    longest: [],
  };
  for (const r of scheduled) {
    if (r.status === 'succeeded') s.succeeded++;
    else if (r.status === 'cancelled') s.cancelled++;
    else if (r.status === 'running' || r.status === 'finishing') {
      s.running++;
      if (silent.get(r.runId)) s.stuck++;
    } else if (isMissed(r)) s.missed++;
    else {
      const dest = byAccount.get(r.accountId);
      const code = dest ? describeFailure(dest, r.error ?? '').code : 'internal';
      if (code === 'internal') s.failed.ours++;
      else s.failed.customer++;
      s.failed.byCode[code] = (s.failed.byCode[code] ?? 0) + 1;
    }
  }
  const opened = new Set(scheduled.map((r) => r.accountId));
  s.notOpened = due.map((d) => d.accountId).filter((a) => !opened.has(a));
  s.longest = scheduled
    .filter((r) => !isMissed(r))
    .map((r) => ({
      runId: r.runId,
      accountId: r.accountId,
      status: r.status,
      seconds: ((r.finishedAt ?? q.now).getTime() - r.startedAt.getTime()) / 1000,
    }))
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, 5);
  return s;
}

/** The latest slot that has started at `now` (UTC), and its date: today's, or yesterday's last. */
export function currentSlot(slots: string[], now: Date): { slot: string; date: string } {
  const sorted = [...slots].sort();
  const hhmm = now.toISOString().slice(11, 16);
  const today = now.toISOString().slice(0, 10);
  const started = sorted.filter((s) => s <= hhmm);
  if (started.length > 0) return { slot: started[started.length - 1]!, date: today };
  const yesterday = new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10);
  return { slot: sorted[sorted.length - 1]!, date: yesterday };
}

/** The slot's facts as one CloudWatch embedded-metric-format line (the sweeper logs it every 5 minutes). */
export function slotMetricsLine(s: SlotStatus, namespace: string, now: Date): string {
  const metrics = {
    SlotDue: s.due,
    SlotSucceeded: s.succeeded,
    SlotFailedCustomer: s.failed.customer,
    SlotFailedOurs: s.failed.ours,
    SlotRunning: s.running,
    SlotStuck: s.stuck,
    SlotMissed: s.missed,
    SlotNotOpened: s.notOpened.length,
    Paused: s.paused.length,
  };
  return emfLine(
    namespace,
    now,
    Object.keys(metrics).map((name) => ({ name, unit: 'Count' as const })),
    { slot: s.slot, date: s.date, ...metrics },
  );
}
