import type { ReadSnapshot, TableSnapshots } from '../contracts/receipt.js';

/**
 * How consistent a delivery is, from the snapshot every table (and every key-range part of a split
 * table) was actually read in — as each reading transaction reported it (txid_current_snapshot()),
 * never as the driver intended. One snapshot for all: `delivery`. More than one (a task that could
 * not import the run's shared snapshot read in its own): `table`, and every table lists which of its
 * parts were read in which snapshot, so nothing is silently mixed.
 */
export interface PartRead {
  table: string;
  part: number;
  snapshot?: ReadSnapshot | undefined;
}

export interface Consistency {
  /** The snapshot all (`delivery`) or most (`table`) of the parts were read in. */
  snapshot?: ReadSnapshot;
  consistency: 'delivery' | 'table';
  /** With `table`: per table, each snapshot it was read in and the parts read in it. */
  perTable?: Map<string, TableSnapshots[]>;
}

const UNKNOWN: ReadSnapshot = { id: 'unknown', at: 'unknown' };

export function consistencyOf(reads: PartRead[]): Consistency {
  const count = new Map<string, { snap: ReadSnapshot; n: number }>();
  for (const r of reads) {
    const s = r.snapshot ?? UNKNOWN;
    const c = count.get(s.id);
    if (c) c.n++;
    else count.set(s.id, { snap: s, n: 1 });
  }
  const known = [...count.values()].filter((c) => c.snap.id !== UNKNOWN.id);
  // Most parts first; on a tie the earliest.
  known.sort((a, b) => b.n - a.n || (a.snap.at < b.snap.at ? -1 : a.snap.at > b.snap.at ? 1 : 0));
  const main = known[0]?.snap;
  if (count.size === 1 && main) return { snapshot: main, consistency: 'delivery' };
  const perTable = new Map<string, TableSnapshots[]>();
  for (const r of [...reads].sort((a, b) => a.part - b.part)) {
    const s = r.snapshot ?? UNKNOWN;
    const list = perTable.get(r.table) ?? [];
    const entry = list.find((e) => e.id === s.id);
    if (entry) entry.parts.push(r.part);
    else list.push({ id: s.id, at: s.at, parts: [r.part] });
    perTable.set(r.table, list);
  }
  return { ...(main ? { snapshot: main } : {}), consistency: 'table', perTable };
}
