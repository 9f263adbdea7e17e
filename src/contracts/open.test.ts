import { describe, expect, it } from 'vitest';
import { OPEN_BATCH_MAX, openMessageSchema, openMessages, openRecords } from './open.js';

describe('open messages', () => {
  it('cuts a slot’s accounts into messages of at most k, in order, each valid', () => {
    const ids = Array.from({ length: 23 }, (_, i) => `a${i}`);
    const msgs = openMessages('04:00', '2026-12-04', 'schedule', ids, 10);
    expect(msgs.map((m) => m.accountIds.length)).toEqual([10, 10, 3]);
    expect(msgs.flatMap((m) => m.accountIds)).toEqual(ids);
    // At most OPEN_BATCH_MAX per message, whatever is asked.
    expect(
      openMessages('04:00', '2026-12-04', 'schedule', [...ids, ...ids.map((i) => `b${i}`)], 1000).map(
        (m) => m.accountIds.length,
      ),
    ).toEqual([OPEN_BATCH_MAX, 46 - OPEN_BATCH_MAX]);
    expect(openMessages('04:00', '2026-12-04', 'schedule', [])).toEqual([]);
  });

  it('is strict: unknown fields, a bad slot or day, duplicate or too many accounts are refused', () => {
    const ok = { kind: 'open', slot: '04:00', slotDate: '2026-12-04', by: 'schedule', accountIds: ['a'] };
    expect(openMessageSchema.parse(ok)).toEqual(ok);
    for (const bad of [
      { ...ok, extra: 1 },
      { ...ok, slot: '4:00' },
      { ...ok, slotDate: '04.12.2026' },
      { ...ok, by: 'someone' },
      { ...ok, accountIds: [] },
      { ...ok, accountIds: ['a', 'a'] },
      { ...ok, accountIds: Array.from({ length: OPEN_BATCH_MAX + 1 }, (_, i) => `a${i}`) },
    ])
      expect(openMessageSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });

  it('hands a record that is not an open message to `malformed` and keeps the others', () => {
    const bad: string[] = [];
    const good = { kind: 'open', slot: '15:00', slotDate: '2026-12-04', by: 'catch-up', accountIds: ['x'] };
    const out = openRecords(
      {
        Records: [
          { messageId: '1', body: 'not json' },
          { messageId: '2', body: JSON.stringify(good) },
        ],
      },
      (r) => bad.push(r.messageId),
    );
    expect(bad).toEqual(['1']);
    expect(out.map((o) => o.message)).toEqual([good]);
  });
});
