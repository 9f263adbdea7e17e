import { parse as parseHcl } from '@cdktf/hcl2json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../src/devstack/admin.js';
import { dropship } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 26, item 4: the customer's setup kit (`dropship destinations kit`). The CloudFormation
 * template's and the Terraform module's IAM documents are byte for byte what `dropship policy`
 * prints (the same canonical serialisation of both); the quick-create link carries the external ID
 * and the template's parameters; `dropship dev provision` applies the same kit, and the destination
 * it provisions passes the doctor on the local stack.
 */
let h: Harness;
let admin: AdminServer;
const KMS = 'arn:aws:kms:eu-central-1:444444444444:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const BASE = 'https://dropship-kits.s3.eu-west-1.amazonaws.com/templates';

beforeAll(async () => {
  h = await startHarness();
  admin = new AdminServer(h.stack);
  await admin.start();
  await h.pool.query(`create schema kitplain; create table kitplain.t (id int primary key);
    create schema kitkms; create table kitkms.t (id int primary key);`);
}, 120_000);

afterAll(async () => {
  await admin?.stop();
  await h?.stop();
});

function cli(args: string[], env: Record<string, string> = {}) {
  return dropship(h.stack, args, {
    env: {
      DROPSHIP_LOG_LEVEL: 'silent',
      DROPSHIP_DEV_ADMIN_URL: admin.url,
      DROPSHIP_DEV_ADMIN_TOKEN: admin.token,
      ...env,
    },
  });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const r = await cli(args, env);
  expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

/** One document of `dropship policy`'s output: after its `# <name>` heading and comment lines, up to a blank line. */
function printedDocument(printed: string, name: string): unknown {
  const lines = printed.split('\n');
  let i = lines.findIndex((l) => l.startsWith(`# ${name}`));
  expect(i, name).toBeGreaterThanOrEqual(0);
  while (lines[i]!.startsWith('#')) i++;
  const end = lines.indexOf('', i);
  return JSON.parse(lines.slice(i, end === -1 ? undefined : end).join('\n'));
}

/**
 * The one canonical serialisation both sides go through before the byte comparison: JSON with object
 * keys sorted (the local stack stores a role's policies through its zod schema, which orders keys its
 * own way; the kit's own files keep `dropship policy`'s order, src/destinations/s3/kit.test.ts).
 */
const canonical = (doc: unknown): string =>
  JSON.stringify(doc, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );

const CASES = [
  {
    name: 'without KMS',
    account: 'kitplain',
    role: 'arn:aws:iam::333333333333:role/dropship-plain',
    region: 'eu-west-1',
    extra: [] as string[],
  },
  {
    name: 'with KMS',
    account: 'kitkms',
    role: 'arn:aws:iam::444444444444:role/vendors/dropship-kms',
    region: 'eu-central-1',
    extra: ['--kms-key-arn', KMS],
  },
];

describe.each(CASES)('the setup kit $name', ({ account, role, region, extra }) => {
  let printed = '';
  beforeAll(async () => {
    await ok([
      'destinations',
      'add',
      '--account',
      account,
      '--plan',
      'paid',
      '--bucket',
      `${account}-data`,
      '--prefix',
      'exports',
      '--region',
      region,
      '--role-arn',
      role,
      '--source-schema',
      account,
      ...extra,
    ]);
    printed = (await ok(['policy', '--account', account])).stdout;
  }, 60_000);

  it('CloudFormation: the role’s trust and permission policies are `dropship policy`’s, byte for byte', async () => {
    const r = await ok(['destinations', 'kit', account, '--format', 'cloudformation']);
    const template = JSON.parse(r.stdout);
    const props = template.Resources.DropshipRole.Properties;
    expect(canonical(props.AssumeRolePolicyDocument)).toBe(canonical(printedDocument(printed, 'trust.json')));
    expect(props.Policies).toHaveLength(1);
    expect(canonical(props.Policies[0].PolicyDocument)).toBe(canonical(printedDocument(printed, 'write.json')));
    expect(canonical(printedDocument(printed, 'write.json')).includes(KMS)).toBe(extra.length > 0);
    // The printed create-role command creates the template's role: same name, same path (a role made without
    // the path would be another ARN, one dropship never assumes).
    const createRole = printed.split('\n').find((l) => l.startsWith('aws iam create-role')) ?? '';
    expect(createRole).toContain(`--role-name ${props.RoleName}`);
    if (props.Path === '/') expect(createRole).not.toContain('--path');
    else expect(createRole).toContain(`--path ${props.Path}`);
    // The lifecycle rules of the optional bucket are the printed lifecycle.json's, in CloudFormation's shape.
    const lifecycle = printedDocument(printed, 'lifecycle.json') as {
      Rules: { ID: string; Filter: { Prefix: string } }[];
    };
    const rules = template.Resources.ExportBucket.Properties.LifecycleConfiguration.Rules;
    expect(rules.map((x: { Id: string; Prefix: string }) => [x.Id, x.Prefix])).toEqual(
      lifecycle.Rules.map((x) => [x.ID, x.Filter.Prefix]),
    );
    expect(rules.some((x: { AbortIncompleteMultipartUpload?: unknown }) => x.AbortIncompleteMultipartUpload)).toBe(
      true,
    );
    // Without a hosting place for templates there is no link; stderr says how to host one.
    expect(r.stderr).toContain('DROPSHIP_KIT_TEMPLATE_BASE_URL is not set');
    expect(r.stderr).not.toContain('quickcreate');
  });

  it('Terraform (parsed with @cdktf/hcl2json): aws_iam_role and aws_iam_role_policy carry the same documents', async () => {
    const r = await ok(['destinations', 'kit', account, '--format', 'terraform']);
    const module = await parseHcl('main.tf', r.stdout);
    const roleBlock = module.resource.aws_iam_role.dropship[0];
    const policyBlock = module.resource.aws_iam_role_policy.dropship_write[0];
    expect(canonical(JSON.parse(roleBlock.assume_role_policy))).toBe(canonical(printedDocument(printed, 'trust.json')));
    expect(canonical(JSON.parse(policyBlock.policy))).toBe(canonical(printedDocument(printed, 'write.json')));
    expect(policyBlock.role).toBe(`$${'{'}aws_iam_role.dropship.id}`);
    expect(roleBlock.name).toBe(role.split('/').pop());
    expect(module.resource.aws_s3_bucket.exports[0].bucket).toBe(`${account}-data`);
    expect(module.resource.aws_s3_bucket_lifecycle_configuration.exports[0].rule).toHaveLength(2);
  });

  it('json: the documents `dropship policy` prints', async () => {
    const r = await ok(['destinations', 'kit', account, '--format', 'json']);
    const kit = JSON.parse(r.stdout);
    for (const [key, file] of [
      ['trust', 'trust.json'],
      ['writer', 'write.json'],
      ['lifecycle', 'lifecycle.json'],
    ] as const)
      expect(canonical(kit.documents[key]), key).toBe(canonical(printedDocument(printed, file)));
  });

  it('the quick-create link: the template URL, the stack name, every parameter and the external ID', async () => {
    const env = { DROPSHIP_KIT_TEMPLATE_BASE_URL: `${BASE}/` };
    const link = (await ok(['destinations', 'kit', account, '--link'], env)).stdout.trim();
    const full = await ok(['destinations', 'kit', account], env);
    const template = JSON.parse(full.stdout);
    const externalId = template.Parameters.ExternalId.Default as string;
    expect(externalId).toMatch(/^dropship-[\w-]{32}$/);
    expect(printed).toContain(`"sts:ExternalId": "${externalId}"`);
    const url = new URL(link);
    expect(`${url.origin}${url.pathname}`).toBe('https://console.aws.amazon.com/cloudformation/home');
    expect(url.searchParams.get('region')).toBe(region);
    const q = new URLSearchParams(url.hash.replace(/^#\/stacks\/quickcreate\?/, ''));
    expect(url.hash.startsWith('#/stacks/quickcreate?')).toBe(true);
    const templateUrl = q.get('templateURL')!;
    expect(templateUrl.startsWith(`${BASE}/${account}/`)).toBe(true);
    expect(templateUrl).toMatch(/\/[0-9a-f]{16}\.template\.json$/);
    expect(q.get('stackName')).toBe(`dropship-${account}`);
    expect(q.get('param_ExternalId')).toBe(externalId);
    expect(q.get('param_BucketName')).toBe(`${account}-data`);
    expect(q.get('param_CreateBucket')).toBe('false');
    // Every template parameter is in the link, with a value the template allows.
    for (const [name, p] of Object.entries(template.Parameters as Record<string, { AllowedValues: string[] }>))
      expect(p.AllowedValues).toContain(q.get(`param_${name}`));
    // stderr tells where to upload the very file stdout holds.
    expect(full.stderr).toContain(`upload dropship-${account}.template.json to ${templateUrl}`);
    expect(full.stderr).toContain(link);
  });
});

describe('the kit command’s bad input', () => {
  it('refuses --link without a hosting place (exit 2, says how to host it), and an unknown account', async () => {
    const r = await cli(['destinations', 'kit', 'kitplain', '--link']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('DROPSHIP_KIT_TEMPLATE_BASE_URL is not set');
    expect(r.stdout).toBe('');
    const unknown = await cli(['destinations', 'kit', 'nobody']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('No destination is registered for account "nobody"');
    const bad = await cli(['destinations', 'kit', 'kitplain', '--format', 'pulumi']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("argument 'pulumi' is invalid");
  });
});

describe('dev provision from the kit', () => {
  it('creates the role the CloudFormation template declares — documents, path, longest session — and the doctor passes', async () => {
    // A platform that asks for 2-hour sessions: the role must allow them (AWS's default is 1 hour).
    const env = { DROPSHIP_ROLE_SESSION_SECONDS: '7200' };
    const arn = 'arn:aws:iam::555555555555:role/vendors/dropship-dev';
    await h.pool.query('create schema kitdev; create table kitdev.t (id int primary key)');
    await ok([
      'destinations',
      'add',
      '--account',
      'kitdev',
      '--plan',
      'free',
      '--bucket',
      'kitdev-data',
      '--prefix',
      'exports',
      '--region',
      'eu-central-1',
      '--role-arn',
      arn,
      '--kms-key-arn',
      KMS.replace('444444444444', '555555555555'),
      '--source-schema',
      'kitdev',
    ]);
    const provisioned = await ok(['dev', 'provision', '--account', 'kitdev'], env);
    expect(provisioned.stdout).toContain('#   bucket kitdev-data (eu-central-1)');
    const template = JSON.parse((await ok(['destinations', 'kit', 'kitdev'], env)).stdout);
    const props = template.Resources.DropshipRole.Properties;
    expect(props.MaxSessionDuration).toBe(7200);
    const res = await fetch(`${admin.url}/v1/role?arn=${encodeURIComponent(arn)}`, {
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(res.status).toBe(200);
    const stackRole = (await res.json()) as { trustPolicy: unknown; policies: unknown[] };
    expect(canonical(stackRole.trustPolicy)).toBe(canonical(props.AssumeRolePolicyDocument));
    expect(canonical(stackRole.policies)).toBe(
      canonical(props.Policies.map((p: { PolicyDocument: unknown }) => p.PolicyDocument)),
    );
    expect(h.stack.iam.roles.get(arn)?.maxSessionSeconds).toBe(7200);
    // `dropship policy`'s create-role command asks for the same path and longest session as the template.
    const policy = (await ok(['policy', '--account', 'kitdev'], env)).stdout;
    expect(policy).toContain(
      `aws iam create-role --role-name dropship-dev --path ${props.Path} --max-session-duration ${props.MaxSessionDuration} --assume-role-policy-document file://trust.json`,
    );
    // The doctor, from dropship's side: AssumeRole with the external ID (for 2 hours), bucket, KMS multipart.
    const report = await ok(['doctor', '--account', 'kitdev'], env);
    expect(report.stdout).toContain('all checks passed');
    // A platform asking for longer sessions than the role allows: the doctor names MaxSessionDuration and the
    // setting, never the trust policy (STS's ValidationError is not a trust problem).
    const longer = await cli(['doctor', '--account', 'kitdev'], { DROPSHIP_ROLE_SESSION_SECONDS: '10800' });
    expect(longer.code).toBe(1);
    const assume = longer.stdout.split('\n').findIndex((l) => l.startsWith('✗ assume role'));
    expect(longer.stdout.split('\n')[assume]).toContain('ValidationError');
    const fix = longer.stdout.split('\n')[assume + 1] ?? '';
    expect(fix).toContain('MaxSessionDuration');
    expect(fix).toContain('DROPSHIP_ROLE_SESSION_SECONDS');
    expect(fix).toContain('10800');
    expect(fix).not.toContain('trust policy');
  }, 60_000);
});
