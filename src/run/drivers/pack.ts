import type { TaskMessage } from '../../contracts/task.js';

/**
 * Which tasks of a fan-out run travel together (issue 25, item 3). Every message costs a worker
 * invocation its fixed cost (a ledger read of the run, a snapshot join, the destination's
 * credentials and clients); an account of many small tables paid it once per table. So small
 * whole tables share a message:
 *
 *   - a whole table whose size estimate is at most `packBytes` is small; small tables are packed
 *     first-fit by decreasing size into messages of at most `packBytes` estimated bytes and at most
 *     `maxTables` tables each;
 *   - a larger table, a table without an estimate, and every key-range part of a split table keeps
 *     its own message (they are the work that parallelism is for);
 *   - a message with a single table has the one-task shape every worker already reads.
 *
 * `packBytes` 0 turns packing off (one message per task, as before).
 */
export interface PackInput {
  runId: string;
  accountId: string;
  /** Whole (unsplit) tables with their estimated bytes (null: unknown). */
  tables: { name: string; bytes: number | null }[];
  /** Key-range parts of split tables. */
  parts: { table: string; part: number }[];
  packBytes: number;
  maxTables: number;
}

export function packTasks(input: PackInput): TaskMessage[] {
  const { runId, accountId } = input;
  const small: { name: string; bytes: number }[] = [];
  const alone: string[] = [];
  for (const t of input.tables) {
    if (input.packBytes > 0 && input.maxTables > 1 && t.bytes !== null && t.bytes <= input.packBytes)
      small.push({ name: t.name, bytes: t.bytes });
    else alone.push(t.name);
  }
  // First-fit decreasing; ties keep catalog order (Array.prototype.sort is stable).
  small.sort((a, b) => b.bytes - a.bytes);
  const bins: { names: string[]; bytes: number }[] = [];
  for (const t of small) {
    const bin = bins.find((b) => b.names.length < input.maxTables && b.bytes + t.bytes <= input.packBytes);
    if (bin) {
      bin.names.push(t.name);
      bin.bytes += t.bytes;
    } else bins.push({ names: [t.name], bytes: t.bytes });
  }
  const order = new Map(input.tables.map((t, i) => [t.name, i]));
  // Large whole tables first (the longest work starts earliest), then the packed ones, then the parts.
  const messages: TaskMessage[] = alone.map((name) => ({ runId, accountId, table: name }));
  for (const b of bins) {
    const names = b.names.sort((x, y) => order.get(x)! - order.get(y)!);
    messages.push(names.length === 1 ? { runId, accountId, table: names[0]! } : { runId, accountId, tables: names });
  }
  for (const p of input.parts) messages.push({ runId, accountId, table: p.table, part: p.part });
  return messages;
}
