import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Receipt } from '../../src/contracts/receipt.js';
import { loadReceipt } from '../../src/customer/loader.js';
import { type Dialect, loadManifests, type Manifest, warehouseSql } from '../../src/customer/warehouse-sql.js';
import { receiptPrefix, validateReceipt } from '../../src/receipt/validate.js';

/**
 * A customer's loader: S3 ObjectCreated on receipt.json → SQS → this Lambda, which loads every table
 * the receipt lists into TARGET_DATABASE_URL (postgres://… or duckdb:/path). It reads with the
 * function's own role (s3:GetObject on the dropship prefix: `dropship policy --reader`).
 * With WAREHOUSE_SQL_DIALECT (redshift | snowflake | athena) it also returns the loading SQL for that
 * warehouse, generated from the receipt's columns (REDSHIFT_IAM_ROLE / SNOWFLAKE_STAGE fill them in).
 * Redshift and Athena load exactly the receipt's files through manifests: they are returned too, to
 * be uploaded to MANIFEST_URL (an S3 folder of the customer's choosing) before the SQL runs.
 * A message whose load fails is reported back (partial batch response) and retried by SQS.
 */
interface S3EventRecord {
  eventName: string;
  s3: { bucket: { name: string }; object: { key: string } };
}

/**
 * The one receipt this function loads: `<PREFIX>/receipt.json` in BUCKET (serverless.yml passes both). Any other
 * object whose key ends in receipt.json — another prefix's, another writer's in a shared bucket, `<prefix>/2x/receipt.json`
 * — is not this delivery's and is never loaded (red team, customer tools: a suffix-only check loaded a receipt another
 * writer placed at `dropship-staging/receipt.json` over the customer's tables).
 */
export function deliveryReceipt(env: NodeJS.ProcessEnv): { bucket: string; key: string } {
  const bucket = env.RECEIPT_BUCKET;
  if (!bucket) throw new Error('RECEIPT_BUCKET is not set (serverless.yml sets it from BUCKET)');
  const prefix = (env.RECEIPT_PREFIX ?? '').replace(/\/+$/, '');
  return { bucket, key: prefix ? `${prefix}/receipt.json` : 'receipt.json' };
}

export const handler = async (event: { Records: { messageId: string; body: string }[] }) => {
  const target = process.env.TARGET_DATABASE_URL;
  if (!target) throw new Error('TARGET_DATABASE_URL is not set');
  const expected = deliveryReceipt(process.env);
  const s3 = new S3Client({ ...(process.env.DROPSHIP_S3_FORCE_PATH_STYLE === 'true' ? { forcePathStyle: true } : {}) });
  const batchItemFailures: { itemIdentifier: string }[] = [];
  const loaded: {
    receipt: string;
    tables: { table: string; rows: number }[];
    sql?: string;
    manifests?: Manifest[];
  }[] = [];
  const dialect = process.env.WAREHOUSE_SQL_DIALECT as Dialect | undefined;
  try {
    for (const record of event.Records) {
      try {
        const s3Event = JSON.parse(record.body) as { Records?: S3EventRecord[]; Event?: string };
        if (s3Event.Event === 's3:TestEvent') continue; // sent once when the notification is configured
        for (const r of s3Event.Records ?? []) {
          if (!r.eventName.startsWith('ObjectCreated:')) continue;
          const key = decodeURIComponent(r.s3.object.key.replace(/\+/g, ' '));
          if (r.s3.bucket.name !== expected.bucket || key !== expected.key) {
            console.log(JSON.stringify({ msg: 'not the delivery receipt: ignored', bucket: r.s3.bucket.name, key }));
            continue;
          }
          const receipt = `s3://${r.s3.bucket.name}/${key}`;
          const tables = await loadReceipt({ s3, receiptUri: receipt, into: target });
          let sql: string | undefined;
          let manifests: Manifest[] | undefined;
          if (dialect) {
            const body = await s3.send(new GetObjectCommand({ Bucket: r.s3.bucket.name, Key: key }));
            const doc = JSON.parse(await body.Body!.transformToString()) as Receipt;
            // This copy is read again (it may have been replaced since the load): checked as the loader checked its own.
            const violations = validateReceipt(doc, { prefix: receiptPrefix(key) });
            if (violations.length > 0)
              throw new Error(
                `${receipt} is not a valid receipt: ${violations.map((v) => `${v.path} ${v.message}`).join('; ')}`,
              );
            const sqlTarget = {
              bucket: r.s3.bucket.name,
              prefix: key.replace(/\/?receipt\.json$/, ''),
              ...(process.env.REDSHIFT_IAM_ROLE ? { redshiftIamRole: process.env.REDSHIFT_IAM_ROLE } : {}),
              ...(process.env.SNOWFLAKE_STAGE ? { snowflakeStage: process.env.SNOWFLAKE_STAGE } : {}),
              ...(process.env.MANIFEST_URL ? { manifestUrl: process.env.MANIFEST_URL } : {}),
            };
            sql = warehouseSql(doc, dialect, sqlTarget);
            if (dialect !== 'snowflake') manifests = loadManifests(doc, dialect, sqlTarget);
          }
          loaded.push({ receipt, tables, ...(sql ? { sql } : {}), ...(manifests ? { manifests } : {}) });
          console.log(
            JSON.stringify({
              msg: 'receipt loaded',
              receipt,
              tables: tables.length,
              rows: tables.reduce((n, t) => n + t.rows, 0),
            }),
          );
        }
      } catch (e) {
        console.error(
          JSON.stringify({ msg: 'receipt load failed', messageId: record.messageId, error: (e as Error).message }),
        );
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
  } finally {
    s3.destroy();
  }
  return { batchItemFailures, loaded };
};
