import type { Destination } from '../accounts/destination.js';
import type { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { allSlots, slotsByPlan } from '../contracts/slots.js';
import { errorFields, type Logger } from '../log/logger.js';
import { schemaSizes, selectedSizes } from '../pipeline/source/estimate.js';
import { connectSource, sourceClient, sourceSession } from '../pipeline/source/snapshot.js';
import {
  type CapacityRates,
  type DestinationEstimate,
  forecast,
  type SlotForecast,
  windowSeconds,
} from './capacity.js';

/**
 * The forecast's inputs read from where they live: the registry (who is due in which slot), the
 * source's catalog (rows and bytes of each destination's selected tables: src/pipeline/source/estimate.ts)
 * and the settings (rates, concurrency). `dropship capacity` prints it; the schedule function logs it
 * when it opens a slot (`logSlotForecast`).
 */
export interface CapacityDeps {
  registry: Registry;
  settings: Settings;
  sourceUrl: string;
}

/** The worker function's timeout (serverless.yml `functions.worker.timeout`). */
export const WORKER_TIMEOUT_SECONDS = 900;
/** Lambda's price per million requests (one per task message). */
export const USD_PER_MILLION_REQUESTS = 0.2;

export function capacityRates(settings: Settings): CapacityRates {
  return {
    rowsPerSecondPerWorker: settings.DROPSHIP_CAPACITY_ROWS_PER_SECOND,
    fixedSecondsPerDestination: settings.DROPSHIP_CAPACITY_FIXED_MS_PER_DESTINATION / 1000,
    fixedSecondsPerTask: settings.DROPSHIP_CAPACITY_FIXED_MS_PER_TASK / 1000,
    workerMemoryMb: settings.DROPSHIP_CAPACITY_WORKER_MEMORY_MB,
    usdPerGbSecond: settings.DROPSHIP_CAPACITY_USD_PER_GB_SECOND,
    usdPerMillionRequests: USD_PER_MILLION_REQUESTS,
  };
}

/**
 * Size estimates of every destination (one source connection; one catalog query for all schemas, and
 * the selection's own queries for destinations that select tables or a tenant). A destination whose
 * schema cannot be read is estimated with no tables and named in `problems`.
 */
export async function estimateDestinations(
  deps: Pick<CapacityDeps, 'settings' | 'sourceUrl'>,
  dests: Destination[],
): Promise<{ estimates: Map<string, DestinationEstimate>; problems: string[] }> {
  const estimates = new Map<string, DestinationEstimate>();
  const problems: string[] = [];
  if (dests.length === 0) return { estimates, problems };
  const session = sourceSession(deps.settings);
  const client = sourceClient(deps.sourceUrl, 'dropship capacity', session);
  try {
    await connectSource(client, session);
    const sizes = await schemaSizes(client, [...new Set(dests.map((d) => d.sourceSchema))]);
    for (const d of dests) {
      try {
        const tables = await selectedSizes(client, d.sourceSchema, d.selection, sizes.get(d.sourceSchema) ?? new Map());
        if (tables.length === 0)
          problems.push(`account ${d.accountId}: no table of schema "${d.sourceSchema}" to export`);
        estimates.set(d.accountId, { accountId: d.accountId, tables });
      } catch (e) {
        problems.push(`account ${d.accountId}: ${(e as Error).message}`);
        estimates.set(d.accountId, { accountId: d.accountId, tables: [] });
      }
    }
  } finally {
    await client.end().catch(() => {});
  }
  return { estimates, problems };
}

export interface CapacityReport {
  forecasts: SlotForecast[];
  /** Destinations whose size could not be estimated (counted with no tables). */
  problems: string[];
}

/** The forecast of each slot (or of `only`), from the registry and the source as they are now. */
export async function slotForecasts(deps: CapacityDeps, only?: string): Promise<CapacityReport> {
  const plans = slotsByPlan(deps.settings);
  const slots = allSlots(plans);
  const wanted = only ? [only] : slots;
  const due = new Map<string, Destination[]>();
  for (const s of wanted) due.set(s, await deps.registry.due(s, plans));
  const all = new Map<string, Destination>();
  for (const ds of due.values()) for (const d of ds) all.set(d.accountId, d);
  const { estimates, problems } = await estimateDestinations(deps, [...all.values()]);
  const forecasts = wanted.map((slot) =>
    forecast({
      slot,
      windowSeconds: windowSeconds(slot, slots.includes(slot) ? slots : [...slots, slot]),
      destinations: (due.get(slot) ?? []).map((d) => estimates.get(d.accountId)!),
      splitRows: deps.settings.DROPSHIP_SPLIT_ROWS,
      packing: { packBytes: deps.settings.DROPSHIP_PACK_BYTES, maxTables: deps.settings.DROPSHIP_PACK_MAX_TABLES },
      configuredConcurrency: deps.settings.DROPSHIP_WORKER_CONCURRENCY,
      workerTimeoutSeconds: WORKER_TIMEOUT_SECONDS,
      rates: capacityRates(deps.settings),
    }),
  );
  return { forecasts, problems };
}

/**
 * For the schedule function, when it opens `slot`: logs the slot's forecast as one structured line
 * ('slot forecast', warn when the configured concurrency will not make it) and returns it. Never
 * throws (a forecast that cannot be made is logged as such: it must not keep the slot from opening).
 */
export async function logSlotForecast(
  deps: CapacityDeps & { log: Logger },
  slot: string,
): Promise<SlotForecast | undefined> {
  try {
    const { forecasts, problems } = await slotForecasts(deps, slot);
    const f = forecasts[0]!;
    const line = { slot, forecast: f, ...(problems.length > 0 ? { problems: problems.length } : {}) };
    if (f.warnings.length > 0) deps.log.warn(line, 'slot forecast: the slot may not finish before the next one');
    else deps.log.info(line, 'slot forecast');
    return f;
  } catch (e) {
    deps.log.warn({ slot, ...errorFields(e) }, 'slot forecast: could not be made');
    return undefined;
  }
}
