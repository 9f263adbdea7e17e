import { describe, expect, it } from 'vitest';
import { packTasks } from './pack.js';

const MiB = 1024 * 1024;
const base = { runId: 'r', accountId: 'acme', parts: [], packBytes: 64 * MiB, maxTables: 50 };

describe('packing a run’s tasks into messages', () => {
  it('small tables share a message; a large one, one without an estimate and every part keep their own', () => {
    // Act
    const messages = packTasks({
      ...base,
      tables: [
        { name: 'a', bytes: 8192 },
        { name: 'big', bytes: 65 * MiB },
        { name: 'b', bytes: 16_384 },
        { name: 'unknown', bytes: null },
        { name: 'c', bytes: 0 },
      ],
      parts: [
        { table: 'huge', part: 0 },
        { table: 'huge', part: 1 },
      ],
    });
    // Assess
    expect(messages).toEqual([
      { runId: 'r', accountId: 'acme', table: 'big' },
      { runId: 'r', accountId: 'acme', table: 'unknown' },
      { runId: 'r', accountId: 'acme', tables: ['a', 'b', 'c'] },
      { runId: 'r', accountId: 'acme', table: 'huge', part: 0 },
      { runId: 'r', accountId: 'acme', table: 'huge', part: 1 },
    ]);
  });

  it('a message holds at most packBytes and maxTables; every table is in exactly one message', () => {
    // Prepare: 10 tables of 30 MiB and 5 of 1 MiB, 64 MiB and 4 tables a message.
    const tables = [
      ...Array.from({ length: 10 }, (_, i) => ({ name: `m${i}`, bytes: 30 * MiB })),
      ...Array.from({ length: 5 }, (_, i) => ({ name: `s${i}`, bytes: MiB })),
    ];
    const size = new Map(tables.map((t) => [t.name, t.bytes]));
    // Act
    const messages = packTasks({ ...base, tables, maxTables: 4 });
    // Assess
    const names = messages.map((m) => ('tables' in m ? m.tables : [m.table]));
    expect(names.flat().sort()).toEqual(tables.map((t) => t.name).sort());
    for (const n of names) {
      expect(n.length).toBeLessThanOrEqual(4);
      expect(n.reduce((s, t) => s + size.get(t)!, 0)).toBeLessThanOrEqual(64 * MiB);
    }
    // First-fit decreasing: 5 messages of two 30 MiB tables, the 1 MiB ones fill the room left.
    expect(messages).toHaveLength(5);
  });

  it('packBytes 0 (or 1 table a message) sends one message per task, as before packing', () => {
    const tables = [
      { name: 'a', bytes: 10 },
      { name: 'b', bytes: 10 },
    ];
    const one = [
      { runId: 'r', accountId: 'acme', table: 'a' },
      { runId: 'r', accountId: 'acme', table: 'b' },
    ];
    expect(packTasks({ ...base, tables, packBytes: 0 })).toEqual(one);
    expect(packTasks({ ...base, tables, maxTables: 1 })).toEqual(one);
  });
});
