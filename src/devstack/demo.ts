import { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import type { Registry } from '../accounts/registry.js';
import type { DestinationCompression } from '../contracts/receipt.js';
import type { SelectionInput } from '../contracts/selection.js';
import { permissionPolicy, trustPolicy } from '../destinations/s3/policies.js';
import type { Principal } from './iam.js';
import type { LocalStack } from './stack.js';

/**
 * Demo data shaped like Dreamdata's data platform tables (companies, contacts, events, revenue,
 * revenue_attribution, paid_ads) plus a materialized view, with realistic types: bigint ids,
 * uuid, timestamptz, jsonb, numeric(18,4) and numeric(20,6), text[], enums, a domain, char(3),
 * date, real and double, and about 10% NULLs. Deterministic for a given seed.
 */
export async function createDemoSchema(
  client: pg.ClientBase,
  schema: string,
  events: number,
  seed = 0.42,
): Promise<void> {
  const s = `"${schema}"`;
  await client.query(`
    drop schema if exists ${s} cascade;
    create schema ${s};
    create type ${s}.ad_platform as enum ('google', 'linkedin', 'facebook', 'bing');
    create domain ${s}.email as text check (value like '%@%');
    select setseed(${seed});

    create table ${s}.companies (
      id bigint primary key, domain text not null, name text, industry text, employees integer,
      created_at timestamptz not null, properties jsonb);
    insert into ${s}.companies
      select i, 'company' || i || '.example', 'Company ' || i || case when i % 7 = 0 then ' — Ünïcødé AS' else '' end,
             case when random() < 0.1 then null else (array['SaaS','Retail','Finance','Health'])[1 + (i % 4)] end,
             case when random() < 0.1 then null else (random() * 5000)::int end,
             timestamptz '2019-01-01 00:00:00+00' + (i * interval '37 minutes 13.123457 seconds'),
             case when random() < 0.1 then null else jsonb_build_object('tier', i % 3, 'tags', jsonb_build_array('a', i)) end
        from generate_series(1, 2000) i;

    create table ${s}.contacts (
      id bigint primary key, company_id bigint, email ${s}.email, first_name text, last_name text,
      title varchar(80), created_at timestamptz not null, is_customer boolean);
    insert into ${s}.contacts
      select i, 1 + (i % 2000), 'person' || i || '@company' || (1 + i % 2000) || '.example',
             (array['Ada','Grace','Linus','Ken','Barbara','Edsger'])[1 + (i % 6)],
             case when random() < 0.1 then null else 'Lastname' || i end,
             case when random() < 0.1 then null else 'Title ' || (i % 50) end,
             timestamptz '2020-06-01 12:00:00+00' + (i * interval '11 minutes 0.000001 seconds'),
             case when random() < 0.1 then null else random() < 0.3 end
        from generate_series(1, 10000) i;

    create table ${s}.events (
      id bigint primary key, event_id uuid not null, occurred_at timestamptz not null,
      contact_id bigint, company_id bigint, event_type text not null, properties jsonb,
      revenue numeric(18,4), tags text[], is_conversion boolean, score double precision);
    insert into ${s}.events
      select i, gen_random_uuid(),
             timestamptz '2023-01-01 00:00:00+00' + (i * interval '1 second') + ((i % 1000) * interval '1 microsecond'),
             case when random() < 0.1 then null else 1 + (i % 10000) end,
             case when random() < 0.1 then null else 1 + (i % 2000) end,
             (array['page_view','form_submit','ad_click','email_open','meeting'])[1 + (i % 5)],
             case when random() < 0.1 then null else jsonb_build_object('path', '/p/' || (i % 97), 'n', i) end,
             case when random() < 0.1 then null else round((random() * 2000000 - 1000000)::numeric, 4) end,
             case when i % 10 = 0 then null when i % 10 = 1 then '{}'::text[]
                  when i % 10 = 2 then array['x', null, 'z'] else array['tag' || (i % 13), 'tag' || (i % 7)] end,
             case when random() < 0.1 then null else random() < 0.05 end,
             case when random() < 0.1 then null else random() * 100 end
        from generate_series(1, ${Math.max(0, Math.floor(events))}) i;

    create table ${s}.revenue (
      id bigint primary key, company_id bigint not null, amount numeric(18,2) not null, currency char(3) not null,
      closed_on date, stage text);
    insert into ${s}.revenue
      select i, 1 + (i % 2000), round((random() * 100000)::numeric, 2), (array['USD','EUR','DKK'])[1 + (i % 3)],
             case when random() < 0.1 then null else date '2018-01-01' + (i % 2500) end,
             (array['won','lost','open'])[1 + (i % 3)]
        from generate_series(1, 3000) i;

    create table ${s}.revenue_attribution (
      revenue_id bigint not null, event_id uuid, model text not null, weight double precision, amount numeric(20,6));
    insert into ${s}.revenue_attribution
      select 1 + (i % 3000), gen_random_uuid(), (array['linear','first_touch','last_touch'])[1 + (i % 3)],
             case when random() < 0.1 then null else random() end,
             case when random() < 0.1 then null else round((random() * 1e12)::numeric, 6) end
        from generate_series(1, 9000) i;

    create table ${s}.paid_ads (
      id bigint primary key, platform ${s}.ad_platform not null, campaign text, ad_date date not null,
      impressions integer, clicks smallint, cost numeric(12,2), cpc real);
    insert into ${s}.paid_ads
      select i, (array['google','linkedin','facebook','bing'])[1 + (i % 4)]::${s}.ad_platform,
             case when random() < 0.1 then null else 'Campaign ' || (i % 40) end,
             date '2022-01-01' + (i % 700),
             case when random() < 0.1 then null else (random() * 100000)::int end,
             case when random() < 0.1 then null else (random() * 3000)::int end,
             case when random() < 0.1 then null else round((random() * 5000)::numeric, 2) end,
             case when random() < 0.1 then null else (random() * 10)::real end
        from generate_series(1, 5000) i;

    create materialized view ${s}.events_daily as
      select occurred_at::date as day, event_type, count(*) as events, sum(revenue) as revenue
        from ${s}.events group by 1, 2;
  `);
}

export interface CustomerSetup {
  accountId: string;
  awsAccountId: string;
  bucket: string;
  region?: string;
  prefix?: string;
  plan?: 'paid' | 'free';
  schema: string;
  kmsKeyArn?: string;
  layout?: 'dreamdata' | 'portable';
  /** The Parquet codec (GZIP when absent). */
  compression?: DestinationCompression;
  /** Tenant mode / table and column selection. */
  selection?: SelectionInput;
}

export interface Customer {
  destination: Destination;
  /** The customer's own credentials, able to read and list their bucket. */
  reader: Principal;
}

/**
 * Registers a destination in dropship, then does on the customer's side exactly what docs/customer/setup.md
 * tells a customer to do in AWS: create the bucket, and a role whose trust and permission
 * policies are the ones dropship printed. Also gives the customer a user that can read the bucket.
 */
export async function setupCustomer(stack: LocalStack, registry: Registry, c: CustomerSetup): Promise<Customer> {
  const region = c.region ?? 'us-east-1';
  const roleName = `dropship-export-${c.accountId}`;
  const destination = await registry.add({
    accountId: c.accountId,
    plan: c.plan ?? 'paid',
    bucket: c.bucket,
    prefix: c.prefix ?? '',
    region,
    roleArn: `arn:aws:iam::${c.awsAccountId}:role/${roleName}`,
    sourceSchema: c.schema,
    ...(c.kmsKeyArn ? { kmsKeyArn: c.kmsKeyArn } : {}),
    ...(c.layout ? { layout: c.layout } : {}),
    ...(c.compression ? { compression: c.compression } : {}),
    ...(c.selection ? { selection: c.selection } : {}),
  });
  const users = await stack.applyWorld({
    accounts: {
      [c.awsAccountId]: {
        buckets: [{ name: c.bucket, region }],
        roles: [
          {
            name: roleName,
            trustPolicy: trustPolicy(destination, stack.platform.arn),
            policies: [permissionPolicy(destination)],
          },
        ],
        users: [
          {
            name: `${c.accountId}-reader`,
            policies: [
              {
                Statement: [
                  { Effect: 'Allow', Action: ['s3:GetObject'], Resource: `arn:aws:s3:::${c.bucket}/*` },
                  {
                    Effect: 'Allow',
                    Action: ['s3:ListBucket', 's3:ListBucketMultipartUploads'],
                    Resource: `arn:aws:s3:::${c.bucket}`,
                  },
                ],
              },
            ],
          },
        ],
      },
    },
  });
  return { destination, reader: [...users.values()][0]! };
}

/** An S3 client with the customer's own credentials (not dropship's), against the local S3. */
export function customerS3(
  endpoint: string,
  region: string,
  reader: Pick<Principal, 'accessKeyId' | 'secretAccessKey'>,
): S3Client {
  return new S3Client({
    region,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: reader.accessKeyId, secretAccessKey: reader.secretAccessKey },
  });
}
