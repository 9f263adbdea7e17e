import { describe, expect, it } from 'vitest';
import { consistencyOf } from './consistency.js';

describe('consistencyOf', () => {
  const s1 = { id: '10:12:11', at: '2026-11-23T04:00:00.000001Z' };
  const s2 = { id: '20:20:', at: '2026-11-23T04:05:00.000001Z' };

  it('one snapshot for every table and part: delivery, no per-table lists', () => {
    const c = consistencyOf([
      { table: 'a', part: 0, snapshot: s1 },
      { table: 'b', part: 0, snapshot: s1 },
      { table: 'b', part: 1, snapshot: { ...s1 } },
    ]);
    expect(c).toEqual({ snapshot: s1, consistency: 'delivery' });
  });

  it('mixed: table, the majority snapshot at the top, each table lists its parts per snapshot', () => {
    const c = consistencyOf([
      { table: 'a', part: 0, snapshot: s1 },
      { table: 'b', part: 1, snapshot: s2 },
      { table: 'b', part: 0, snapshot: s1 },
    ]);
    expect(c.consistency).toBe('table');
    expect(c.snapshot).toEqual(s1);
    expect(c.perTable?.get('a')).toEqual([{ ...s1, parts: [0] }]);
    expect(c.perTable?.get('b')).toEqual([
      { ...s1, parts: [0] },
      { ...s2, parts: [1] },
    ]);
  });

  it('a part without a recorded snapshot never yields delivery', () => {
    const c = consistencyOf([
      { table: 'a', part: 0, snapshot: s1 },
      { table: 'b', part: 0 },
    ]);
    expect(c.consistency).toBe('table');
    expect(c.perTable?.get('b')).toEqual([{ id: 'unknown', at: 'unknown', parts: [0] }]);
  });
});
