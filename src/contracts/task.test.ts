import { describe, expect, it } from 'vitest';
import { messageLabel, messageTasks, taskRecords } from './task.js';

describe('task messages in an SQS event', () => {
  it('reads every valid message and hands each malformed one to the caller, once', () => {
    // Prepare
    const ok = { runId: 'r1', accountId: 'acme', table: 'events', part: 2 };
    const event = {
      Records: [
        { messageId: 'm1', body: JSON.stringify(ok), attributes: { ApproximateReceiveCount: '3' } },
        { messageId: 'm2', body: 'not json' },
        { messageId: 'm3', body: JSON.stringify({ ...ok, tabel: 'typo' }) },
        { messageId: 'm4', body: JSON.stringify({ runId: 'r1', accountId: 'acme', table: 'users' }) },
      ],
    };
    const dropped: string[] = [];
    // Act
    const records = taskRecords(event, (record) => dropped.push(record.messageId));
    // Assess
    expect(records.map((r) => [r.record.messageId, r.message])).toEqual([
      ['m1', ok],
      ['m4', { runId: 'r1', accountId: 'acme', table: 'users' }],
    ]);
    expect(records[0]?.record.attributes?.ApproximateReceiveCount).toBe('3');
    expect(dropped).toEqual(['m2', 'm3']);
  });

  it('refuses an event that is not an SQS event', () => {
    expect(() => taskRecords({ detail: {} }, () => {})).toThrow();
  });
});

describe('packed task messages (several small tables of one run)', () => {
  it('reads a packed message, still reads the one-task shape, and refuses mixed or repeated ones', () => {
    // Prepare
    const packed = { runId: 'r1', accountId: 'acme', tables: ['a', 'b', 'c'] };
    const event = {
      Records: [
        { messageId: 'p1', body: JSON.stringify(packed) },
        { messageId: 'p2', body: JSON.stringify({ runId: 'r1', accountId: 'acme', table: 'a', part: 3 }) },
        { messageId: 'p3', body: JSON.stringify({ ...packed, table: 'x' }) },
        { messageId: 'p4', body: JSON.stringify({ ...packed, tables: ['a', 'a'] }) },
        { messageId: 'p5', body: JSON.stringify({ ...packed, tables: [] }) },
        { messageId: 'p6', body: JSON.stringify({ ...packed, part: 1 }) },
      ],
    };
    const dropped: string[] = [];
    // Act
    const records = taskRecords(event, (record) => dropped.push(record.messageId));
    // Assess
    expect(records.map((r) => r.message)).toEqual([packed, { runId: 'r1', accountId: 'acme', table: 'a', part: 3 }]);
    expect(dropped).toEqual(['p3', 'p4', 'p5', 'p6']);
    expect(messageTasks(records[0]!.message)).toEqual([
      { table: 'a', part: 0 },
      { table: 'b', part: 0 },
      { table: 'c', part: 0 },
    ]);
    expect(messageTasks(records[1]!.message)).toEqual([{ table: 'a', part: 3 }]);
    expect(messageLabel(records[0]!.message)).toBe('a,b,c');
    expect(messageLabel(records[1]!.message)).toBe('a#3');
  });
});
