import { describe, expect, it } from 'vitest';
import { handler as check } from '../handlers/check.js';
import { handler as sweeper } from '../handlers/sweeper.js';
import { InvalidEvent } from '../src/run/lambda.js';

/**
 * The operator-invoked functions refuse an event that is none of their shapes, at the edge, before anything runs
 * (deploy red team: `{"cancle": "<runId>"}`, `{"cancel": ""}` or "cancel" ran a whole sweep and answered as if nothing
 * was wrong — the operator believed a run was cancelled; the check function answered a stray field with zod's
 * complaint about a missing `time`).
 */
const refusal = async (p: Promise<unknown>): Promise<InvalidEvent> => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(InvalidEvent);
  return e as InvalidEvent;
};

describe('events the operator-invoked functions refuse', () => {
  it('the sweeper: a mistyped or empty cancel, a string, a cancel with an unknown field', async () => {
    const typo = await refusal(sweeper({ cancle: '20261123T040000Z-3f9a1c' }));
    expect(typo.message).toBe(
      'the sweeper function takes a scheduled event, or {} (sweep now), or {"cancel": "<runId>"} (with "by": "<who>" optionally); this event is an object with fields "cancle": nothing was done',
    );
    expect(typo.badInput).toBe(true);
    await refusal(sweeper({ cancel: '' }));
    await refusal(sweeper({ cancel: '20261123T040000Z-3f9a1c', reason: 'x' }));
    expect((await refusal(sweeper('cancel'))).message).toContain('this event is string');
  });

  it('the check function: a doctor request with a stray field, a scheduled event naming an account', async () => {
    const stray = await refusal(check({ accountId: 'acme', verbose: true }));
    expect(stray.message).toBe(
      'the check function takes a scheduled event (with "time"), or {"accountId": "<account>"} (the doctor); this event is an object with fields "accountId", "verbose": nothing was done',
    );
    await refusal(check({ time: '2026-11-23T14:00:00Z', accountId: 'acme' }));
    await refusal(check({}));
  });

  it('the shapes they take get past the edge (to the wiring, which needs a database here)', async () => {
    for (const p of [
      sweeper({}),
      sweeper({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-11-23T14:05:00Z' }),
      sweeper({ cancel: '20261123T040000Z-3f9a1c', by: 'ops' }),
      check({ accountId: 'acme' }),
      check({ source: 'aws.events', time: '2026-11-23T14:00:00Z' }),
    ]) {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).not.toBeInstanceOf(InvalidEvent);
    }
  });
});
