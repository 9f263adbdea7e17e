import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetBucketLifecycleConfigurationCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Destination } from '../../accounts/destination.js';
import { objectKey } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import { accountRootArn, arnAccountId, arnPartition } from './arn.js';
import { type LifecycleRule, lifecycleOverreach, ruleReaches, runFoldersPrefix } from './bucket-lifecycle.js';
import {
  awsErrorCode,
  destinationClients,
  isSessionTooLong,
  roleSessionName,
  s3SettingsConfig,
  sessionTooLongExplanation,
  stsClientConfig,
} from './clients.js';
import { probeAssumeRole } from './external-id-guard.js';
import { writeResourcesText } from './policies.js';
import { unsignedPayload } from './upload.js';

/**
 * The destination doctor: what a customer's setup lets dropship do, check by check, each with one
 * pass/fail line and, on failure, the exact fix. Also the product's connection check when a customer
 * saves a destination. A role that can be assumed without the external ID is a confused-deputy hole:
 * the doctor reports it, and the run path's guard (src/destinations/s3/external-id-guard.ts) refuses to export
 * there until it is fixed. The documents `dropship policy` prints are in src/destinations/s3/policies.ts.
 */
export interface Check {
  name: string;
  status: 'pass' | 'fail' | 'warn';
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  accountId: string;
  checks: Check[];
  ok: boolean;
  /** false when exporting would be unsafe (role assumable without the external ID). */
  exportAllowed: boolean;
}

const PROBE_PART = 5 * 1024 * 1024;
/** The doctor's probe object (in the destination's folder): overwritten by every run, never one per run. */
export const PROBE_OBJECT = '_dropship_probe/doctor.txt';
/** The key of the probe's multipart uploads (doctor and drift checks), always aborted: no object is left. */
export const PROBE_MULTIPART = '_dropship_probe/doctor.multipart';

/** Lints a trust policy the customer pasted, to tell "not trusted" from "wrong external ID". */
export function lintTrustPolicy(doc: unknown, dest: Destination, principalArn: string): Check[] {
  const statements = ((doc as { Statement?: unknown })?.Statement ?? []) as Record<string, unknown>[];
  const list = Array.isArray(statements) ? statements : [statements];
  const assumes = list.filter(
    (s) => s.Effect === 'Allow' && [s.Action].flat().some((a) => String(a).toLowerCase() === 'sts:assumerole'),
  );
  const names = (s: Record<string, unknown>) =>
    [(s.Principal as { AWS?: unknown } | undefined)?.AWS].flat().map(String);
  const principalAccount = arnAccountId(principalArn);
  const trusting = assumes.filter((s) =>
    names(s).some(
      (n) =>
        n === principalArn ||
        n === principalAccount ||
        (principalAccount !== undefined && n === accountRootArn(arnPartition(principalArn), principalAccount)),
    ),
  );
  if (trusting.length === 0) {
    return [
      {
        name: 'trust policy: principal',
        status: 'fail',
        detail: `no sts:AssumeRole statement trusts dropship's principal ${principalArn}`,
        fix: `set "Principal": { "AWS": "${principalArn}" } in the role's trust policy`,
      },
    ];
  }
  const ids = trusting.flatMap((s) =>
    [(s.Condition as Record<string, Record<string, unknown>> | undefined)?.StringEquals?.['sts:ExternalId']]
      .flat()
      .filter(Boolean)
      .map(String),
  );
  if (ids.length === 0) {
    return [
      {
        name: 'trust policy: external ID',
        status: 'fail',
        detail: 'the statement trusting dropship has no sts:ExternalId condition',
        fix: 'add "Condition": { "StringEquals": { "sts:ExternalId": "<this account\'s external ID>" } }',
      },
    ];
  }
  if (!ids.includes(dest.externalId)) {
    return [
      {
        name: 'trust policy: external ID',
        status: 'fail',
        detail: "the trust policy's sts:ExternalId is not this account's external ID",
        fix: `replace it with the external ID shown by: dropship destinations show ${dest.accountId}`,
      },
    ];
  }
  return [{ name: 'trust policy', status: 'pass', detail: 'trusts dropship with this account’s external ID' }];
}

export async function doctor(
  dest: Destination,
  opts: {
    settings: Settings;
    principalArn?: string;
    trustPolicy?: unknown;
    /**
     * Drift-check mode (src/notify/drift.ts), non-invasive: no probe object (only a multipart upload
     * of one tiny part, aborted), no lifecycle read, and the external-ID probe only when asked
     * (it leaves AccessDenied events in the customer's CloudTrail: at most daily).
     */
    drift?: { externalIdProbe: boolean };
  },
): Promise<DoctorReport> {
  const drift = opts.drift;
  const checks: Check[] = [];
  let exportAllowed = true;
  const principal = opts.principalArn ?? '<dropship principal>';
  const trustFix = `the role's trust policy must allow ${principal} to sts:AssumeRole with the condition StringEquals sts:ExternalId = this account's external ID (dropship policy --account ${dest.accountId})`;

  // 1. AssumeRole with our external ID.
  const runId = `doctor-${randomBytes(3).toString('hex')}`;
  const clients = destinationClients(dest, runId, opts.settings);
  let assumed = false;
  try {
    await clients.credentials();
    const sts = new STSClient({ ...stsClientConfig(dest.region, opts.settings), credentials: clients.credentials });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
    checks.push({ name: 'assume role', status: 'pass', detail: `assumed ${who.Arn}` });
    assumed = true;
  } catch (e) {
    // STS's ValidationError on DurationSeconds is the role's MaxSessionDuration, not its trust policy.
    const tooLong = isSessionTooLong(e);
    checks.push({
      name: 'assume role',
      status: 'fail',
      detail: `AssumeRole on ${dest.roleArn} with the external ID: ${awsErrorCode(e)}${tooLong ? ` (the role's MaxSessionDuration is shorter than DROPSHIP_ROLE_SESSION_SECONDS = ${opts.settings.DROPSHIP_ROLE_SESSION_SECONDS})` : ''}`,
      fix: tooLong ? sessionTooLongExplanation(dest, opts.settings.DROPSHIP_ROLE_SESSION_SECONDS) : trustFix,
    });
  }
  if (opts.trustPolicy !== undefined && opts.principalArn)
    checks.push(...lintTrustPolicy(opts.trustPolicy, dest, opts.principalArn));

  // 2. Without an external ID, and with a wrong one, AssumeRole must be denied.
  const probe = !drift || drift.externalIdProbe;
  const without = probe
    ? await probeAssumeRole(dest, undefined, opts.settings, drift ? 'extid-probe' : 'doctor')
    : 'AccessDenied';
  const wrong =
    probe && !drift
      ? await probeAssumeRole(dest, `dropship-doctor-wrong-${randomBytes(6).toString('hex')}`, opts.settings)
      : 'AccessDenied';
  const undecided = [without, wrong].filter((x) => x !== 'OK' && x !== 'AccessDenied');
  if (!probe) {
    // Not probed this time (at most daily in drift checks).
  } else if (undecided.length > 0 && without !== 'OK' && wrong !== 'OK') {
    exportAllowed = false;
    checks.push({
      name: 'external ID enforced',
      status: 'fail',
      detail: `could not be verified: STS answered ${undecided.join(', ')}`,
      fix: 'run the doctor again; if it persists, check STS reachability from dropship',
    });
  } else if (without === 'OK' || wrong === 'OK') {
    exportAllowed = false;
    checks.push({
      name: 'external ID enforced',
      status: 'fail',
      detail: `the role can be assumed ${without === 'OK' ? 'without an external ID' : 'with a wrong external ID'} — anyone dropship acts for could reach this bucket (confused deputy); dropship refuses to export here`,
      fix: `add "Condition": { "StringEquals": { "sts:ExternalId": "<this account's external ID>" } } to the trust statement (dropship policy --account ${dest.accountId})`,
    });
  } else if (!assumed) {
    // Denied without the external ID, but denied with it too: the denials prove nothing about the condition.
    checks.push({
      name: 'external ID enforced',
      status: 'fail',
      detail:
        'could not be verified: the role cannot be assumed with its external ID either, so the denials without it prove nothing',
      fix: 'fix the assume-role failure above, then run the doctor again',
    });
  } else {
    checks.push({
      name: 'external ID enforced',
      status: 'pass',
      detail: 'AssumeRole without or with a wrong external ID is denied',
    });
  }

  if (assumed) {
    // 3. The bucket exists, in the registered region. Proven by 200, or by 403 (it exists; write-only credentials
    // cannot list it, as intended); 404 and a region header of another region are the customer's to fix. Anything
    // else (a 5xx, a 301 without a region, a network error) proves nothing: not verified, never a pass.
    checks.push(await bucketCheck(dest, clients.s3));

    // 4. A small probe object and a two-part multipart upload, aborted. One fixed key each, under dropship's
    // `_dropship_probe/` (the only keys there the role may write, src/destinations/s3/policies.ts): the role cannot
    // delete, so each run overwrites the last run's probe instead of leaving one more behind.
    const sse = dest.kmsKeyArn ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: dest.kmsKeyArn } : {};
    const probeKey = objectKey(dest, PROBE_OBJECT);
    if (!drift)
      try {
        await clients.s3.send(
          unsignedPayload(
            new PutObjectCommand({
              Bucket: dest.bucket,
              Key: probeKey,
              Body: `dropship doctor probe ${new Date().toISOString()}\n`,
              ...sse,
            }),
            opts.settings.DROPSHIP_S3_UNSIGNED_PARTS,
          ),
        );
        checks.push({ name: 'put object', status: 'pass', detail: `wrote s3://${dest.bucket}/${probeKey}` });
      } catch (e) {
        checks.push({
          name: 'put object',
          status: 'fail',
          detail: `PutObject on s3://${dest.bucket}/${probeKey}: ${awsErrorCode(e)}`,
          fix: putFix(dest, e, ['kms:GenerateDataKey']),
        });
      }
    const mpuKey = objectKey(dest, PROBE_MULTIPART);
    let uploadId: string | undefined;
    try {
      uploadId = (await clients.s3.send(new CreateMultipartUploadCommand({ Bucket: dest.bucket, Key: mpuKey, ...sse })))
        .UploadId;
      // Sent as the export sends its parts (unsigned payload, with a checksum: src/destinations/s3/upload.ts).
      const part = (PartNumber: number, Body: Buffer) =>
        clients.s3.send(
          unsignedPayload(
            new UploadPartCommand({ Bucket: dest.bucket, Key: mpuKey, UploadId: uploadId, PartNumber, Body }),
            opts.settings.DROPSHIP_S3_UNSIGNED_PARTS,
          ),
        );
      await part(1, drift ? Buffer.from('dropship drift check') : Buffer.alloc(PROBE_PART));
      if (!drift) await part(2, Buffer.from('end'));
      try {
        await clients.s3.send(
          new AbortMultipartUploadCommand({ Bucket: dest.bucket, Key: mpuKey, UploadId: uploadId }),
        );
        checks.push({
          name: 'multipart upload',
          status: 'pass',
          detail: drift
            ? `a multipart upload${dest.kmsKeyArn ? ' with the KMS key' : ''} was started, then aborted`
            : 'two parts uploaded, then the upload was aborted',
        });
      } catch (e) {
        checks.push({
          name: 'multipart upload',
          status: 'fail',
          detail: `AbortMultipartUpload: ${awsErrorCode(e)} — failed exports would leave billed parts behind`,
          fix: `allow s3:AbortMultipartUpload on ${writeResourcesText(dest)}`,
        });
      }
    } catch (e) {
      checks.push({
        name: 'multipart upload',
        status: 'fail',
        detail: `multipart upload to s3://${dest.bucket}/${mpuKey}: ${awsErrorCode(e)}`,
        fix: putFix(dest, e, ['kms:GenerateDataKey', 'kms:Decrypt']),
      });
      if (uploadId)
        await clients.s3
          .send(new AbortMultipartUploadCommand({ Bucket: dest.bucket, Key: mpuKey, UploadId: uploadId }))
          .catch(() => {});
    }

    // 5. Lifecycle rules (warnings), read with the role's own permissions when it has them.
    if (!drift) checks.push(await lifecycleCheck(dest, opts.settings));
  }
  clients.s3.destroy();
  return { accountId: dest.accountId, checks, ok: checks.every((c) => c.status !== 'fail'), exportAllowed };
}

async function bucketCheck(dest: Destination, s3: S3Client): Promise<Check> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: dest.bucket }));
    return { name: 'bucket', status: 'pass', detail: `s3://${dest.bucket} exists in ${dest.region}` };
  } catch (e) {
    const err = e as { $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } };
    const status = err.$metadata?.httpStatusCode;
    const actual = err.$response?.headers?.['x-amz-bucket-region'];
    if (status === 404)
      return {
        name: 'bucket',
        status: 'fail',
        detail: `bucket "${dest.bucket}" does not exist`,
        fix: `create it in ${dest.region}, or register the right bucket name (not the ARN)`,
      };
    if (actual && actual !== dest.region)
      return {
        name: 'bucket',
        status: 'fail',
        detail: `bucket "${dest.bucket}" is in ${actual}, not ${dest.region}`,
        fix: `register region ${actual} for this destination`,
      };
    if (status === 403)
      return {
        name: 'bucket',
        status: 'pass',
        detail: `s3://${dest.bucket} exists in ${dest.region} (not listable with write-only credentials, as intended)`,
      };
    // A HEAD answer has no body: the SDK names an error it has no code for "Unknown"; the HTTP status says more.
    const code = awsErrorCode(e);
    const named = code && code !== 'Unknown' && code !== 'Error' ? code : (e as { code?: string }).code;
    const answer = [named, status ? `HTTP ${status}` : undefined].filter(Boolean).join(', ') || 'an unknown error';
    return {
      name: 'bucket',
      status: 'fail',
      detail: `could not be verified: HeadBucket on s3://${dest.bucket} answered ${answer}`,
      fix: `run the doctor again; if it persists, check that dropship reaches S3 in ${dest.region}`,
    };
  }
}

function putFix(dest: Destination, e: unknown, kmsActions: string[]): string {
  const message = String((e as Error).message ?? '');
  if (dest.kmsKeyArn && /kms:/.test(message)) {
    const missing = /perform: (kms:\w+)/.exec(message)?.[1];
    return `allow ${missing ?? kmsActions.join(' + ')} on ${dest.kmsKeyArn} in the role's policy (multipart uploads with SSE-KMS need kms:GenerateDataKey and kms:Decrypt), and in the key policy`;
  }
  return `allow s3:PutObject and s3:AbortMultipartUpload on ${writeResourcesText(dest)} in the role's permission policy (dropship policy --account ${dest.accountId})`;
}

/**
 * The bucket's lifecycle rules read for one destination: first what would touch objects that are not
 * dropship's run folders (the customer's own objects, or receipt.json/status.json) — a warning with the
 * rule named —, then whether old dumps expire and incomplete uploads are aborted.
 */
export function lifecycleVerdict(rules: LifecycleRule[], dest: Destination, recommended: string): Check {
  const over = lifecycleOverreach(rules, dest);
  if (over.length > 0)
    return {
      name: 'lifecycle',
      status: 'warn',
      detail: over
        .map((o) =>
          o.reaches === 'outside-prefix'
            ? `rule ${o.rule} expires objects outside dropship's folder${dest.prefix ? ` ${dest.prefix}/` : ' (the whole bucket)'}, and receipt.json`
            : `rule ${o.rule} expires ${dest.prefix ? `${dest.prefix}/` : ''}receipt.json and status.json`,
        )
        .join('; '),
      fix: `scope expiring rules to the run folders (${runFoldersPrefix(dest)}…): ${recommended}`,
    };
  // A shard key in a run folder (any year 2000–2999, either layout, starts the same way).
  const runKey = objectKey(dest, '2000-01-01T00:00/t/t_000000000000.parquet.gz');
  const expires = rules.some((r) => r.Expiration && ruleReaches(r, runKey));
  const aborts = rules.some((r) => r.AbortIncompleteMultipartUpload && ruleReaches(r, runKey));
  if (!dest.prefix && !expires)
    return {
      name: 'lifecycle',
      status: 'warn',
      detail:
        "the destination writes at the bucket root: no lifecycle rule can expire old dumps without touching the bucket's other objects",
      fix: `give the destination a prefix (dropship destinations update ${dest.accountId} --prefix dropship), then ${recommended}`,
    };
  if (expires && aborts)
    return { name: 'lifecycle', status: 'pass', detail: 'rules expire old dumps and abort incomplete uploads' };
  return {
    name: 'lifecycle',
    status: 'warn',
    detail: `lifecycle rules do not ${expires ? 'abort incomplete multipart uploads' : 'expire old dumps'}`,
    fix: recommended,
  };
}

async function lifecycleCheck(dest: Destination, settings: Settings): Promise<Check> {
  const recommended =
    'expire dumps after 7 days and abort incomplete multipart uploads after 1 day, under the run folders only ' +
    `(dropship policy --account ${dest.accountId} prints the configuration and the merge)`;
  const sts = new STSClient(stsClientConfig(dest.region, settings));
  let s3: S3Client | undefined;
  try {
    // Without the export's session policy (src/destinations/s3/policies.ts permissionPolicy): that policy
    // allows writes under the prefix only, and this check reads the bucket's lifecycle configuration.
    const res = await sts.send(
      new AssumeRoleCommand({
        RoleArn: dest.roleArn,
        RoleSessionName: roleSessionName(dest.accountId, 'doctor-lifecycle'),
        ExternalId: dest.externalId,
        DurationSeconds: 900,
      }),
    );
    const c = res.Credentials!;
    s3 = new S3Client({
      region: dest.region,
      credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! },
      maxAttempts: settings.DROPSHIP_AWS_MAX_ATTEMPTS,
      ...s3SettingsConfig(settings),
    });
    const lc = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: dest.bucket }));
    return lifecycleVerdict((lc.Rules ?? []) as LifecycleRule[], dest, recommended);
  } catch (e) {
    const code = awsErrorCode(e);
    if (code === 'NoSuchLifecycleConfiguration')
      return { name: 'lifecycle', status: 'warn', detail: 'the bucket has no lifecycle rules', fix: recommended };
    return {
      name: 'lifecycle',
      status: 'warn',
      detail: `lifecycle rules cannot be read with the role (${code}); not checked`,
      fix: recommended,
    };
  } finally {
    sts.destroy();
    s3?.destroy();
  }
}
