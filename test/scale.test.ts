import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { customerS3 } from '../src/devstack/demo.js';
import { checkDelivery, runScale, type ScaleResult } from './bench/scale.js';
import { useHarness } from './kit/index.js';

/**
 * The scale bench's exactly-once checks at a size `npm test` can afford (test/bench/scale.ts; the
 * full bench is `npm run bench -- --scale`): one slot of SCALE_TEST_DESTINATIONS destinations (60
 * by default), each with its own schema, role and prefix (two destinations of one customer share a
 * bucket), opened by the schedule function (its event delivered twice, the second time while
 * the workers drain) and drained by 4 worker loops through the worker
 * Lambda's code. Everything delivered is found by listing S3 with each customer's own credentials.
 */
const N = Number(process.env.SCALE_TEST_DESTINATIONS ?? 60);
const h = useHarness();
let result: ScaleResult | undefined;

describe('scale: one slot, exactly once', () => {
  it(`${N} destinations: one run each, all succeeded, one receipt each in its own place, nothing stray`, async () => {
    const r: ScaleResult = await runScale(h, {
      destinations: N,
      workers: 4,
      tables: 3,
      rows: 3,
      perBucket: 2,
      largeShare: 0,
      validateSample: N,
      timeoutSeconds: 240,
      repeatEvent: true,
    });
    const ids = r.world.destinations.map((d) => d.destination.accountId);
    // One run per destination for the slot, every one succeeded, none left open.
    expect(r.report.drain_timed_out).toBe(false);
    expect([...r.runsPerDestination.keys()].sort()).toEqual([...ids].sort());
    expect([...r.runsPerDestination.values()].filter((c) => c !== 1)).toEqual([]);
    expect(r.report.runs_succeeded).toBe(N);
    expect(r.report.runs_not_succeeded).toBe(0);
    expect(r.openRunsLeft).toBe(0);
    // The schedule event delivered again while the workers drained opened nothing.
    // The second event sees every account due, sends none of them to the open queue again (each
    // already has the slot's run, or is being opened: then the opener's slot key makes it a no-op).
    expect(r.report.repeated_event).toMatchObject({ due: N, runs_opened: 0 });
    expect((r.report.repeated_event as { accounts_sent_to_open: number }).accounts_sent_to_open).toBeLessThanOrEqual(N);
    // Exactly one receipt per destination, found by listing S3, naming that destination's run, valid.
    expect(r.delivery.missingReceipts).toEqual([]);
    expect(r.delivery.receipts).toBe(N);
    expect(r.delivery.duplicateReceipts).toEqual([]);
    expect(r.delivery.wrongRun).toEqual([]);
    expect(r.delivery.validation).toBe('all');
    expect(r.delivery.validated).toBe(N);
    expect(r.delivery.invalid).toEqual([]);
    // Nothing in any other destination's place: every object is under its own prefix and run folder.
    expect(r.delivery.strayObjects).toEqual([]);
    console.log(JSON.stringify({ scale: r.report }));
    result = r;
  }, 300_000);

  it('the checks see a second receipt, a receipt naming another run and an object in another place', async () => {
    const r = result;
    if (!r) throw new Error('the slot above did not complete');
    // The customer of the first bucket overwrites destination 0's receipt with destination 1's, and
    // leaves an object in destination 0's place outside its run folder.
    const [d0, d1] = r.world.destinations;
    const owner = r.world.destinations.filter((d) => d.destination.bucket === d0!.destination.bucket);
    expect(owner.map((d) => d.destination.accountId)).toContain(d1!.destination.accountId);
    const { destination: a } = d0!;
    const { destination: b } = d1!;
    const acct = /^arn:aws:iam::(\d{12}):/.exec(a.roleArn)![1]!;
    const [writer] = (
      await h.stack.applyWorld({
        accounts: {
          [acct]: {
            users: [
              {
                name: 'scale-test-writer',
                policies: [{ Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: `arn:aws:s3:::${a.bucket}*` }] }],
              },
            ],
          },
        },
      })
    ).values();
    const s3 = customerS3(h.stack.s3.endpoint, a.region, writer!);
    try {
      const other = await s3.send(new GetObjectCommand({ Bucket: b.bucket, Key: `${b.prefix}/receipt.json` }));
      await s3.send(
        new PutObjectCommand({
          Bucket: a.bucket,
          Key: `${a.prefix}/receipt.json`,
          Body: await other.Body!.transformToString(),
        }),
      );
      await s3.send(new PutObjectCommand({ Bucket: a.bucket, Key: `${a.prefix}/elsewhere/x.txt`, Body: 'x' }));
    } finally {
      s3.destroy();
    }
    const again = await checkDelivery(h, r.world, r.runs, { validateSample: 10 });
    expect(again.receipts).toBe(N);
    expect(again.duplicateReceipts).toEqual([a.accountId]);
    expect(again.wrongRun).toEqual([a.accountId]);
    expect(again.strayObjects).toEqual([`${a.bucket}/${a.prefix}/elsewhere/x.txt`]);
    // Its receipt lists the other destination's files: outside its prefix, so invalid.
    expect(again.invalid.map((v) => v.split(':')[0])).toEqual([a.accountId]);
  });
});
