import { describe, expect, it } from 'vitest';
import { taskRecords } from './task.js';

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
