import { parse as parseHcl } from '@cdktf/hcl2json';
import { describe, expect, it } from 'vitest';
import { type Destination, s3TargetOf } from '../../accounts/destination.js';
import { KIT_FORMATS as CLI_KIT_FORMATS } from '../../cli/commands/destinations-bulk.js';
import {
  createRoleCommand,
  hclString,
  KIT_FORMATS,
  KitError,
  type KitSettings,
  kitTemplateUrl,
  roleNameAndPath,
  setupKit,
} from './kit.js';
import { policyDocuments } from './policies.js';

const PRINCIPAL = 'arn:aws:iam::999999999999:role/dropship-platform';

function dest(over: Partial<Destination> = {}): Destination {
  const d = {
    accountId: 'acme_co',
    plan: 'paid',
    bucket: 'acme-data',
    prefix: 'exports/dropship',
    region: 'eu-west-1',
    roleArn: 'arn:aws:iam::123456789012:role/integrations/dropship-export',
    externalId: 'dropship-AbC_dEf-123',
    sourceSchema: 'acme',
    layout: 'dreamdata',
    selection: { dropTenantColumn: false, globalTables: [], includeTables: [], excludeTables: [], excludeColumns: [] },
    compression: 'gzip',
    changes: false,
    enabled: true,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    generation: 1,
    version: 1,
    ...over,
  } as Omit<Destination, 'target'>;
  return { ...d, target: s3TargetOf(d) };
}

const settings = (over: Partial<KitSettings> = {}): KitSettings => ({
  DROPSHIP_PRINCIPAL_ARN: PRINCIPAL,
  DROPSHIP_ROLE_SESSION_SECONDS: 3600,
  ...over,
});

const KMS = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('the setup kit', () => {
  it('names the role and its path from the registered ARN', () => {
    expect(roleNameAndPath('arn:aws:iam::123456789012:role/integrations/dropship-export')).toEqual({
      awsAccountId: '123456789012',
      path: '/integrations/',
      name: 'dropship-export',
    });
    expect(roleNameAndPath('arn:aws-cn:iam::123456789012:role/r')).toEqual({
      awsAccountId: '123456789012',
      path: '/',
      name: 'r',
    });
  });

  it('`dropship policy`’s create-role line creates the template’s role: its path and its longest session', () => {
    // Prepare: a role ARN with a path, and a platform asking for 2-hour sessions (AWS's default maximum is 1 hour).
    const d = dest({ roleArn: 'arn:aws:iam::123456789012:role/team/dropship-export' });
    const long = settings({ DROPSHIP_ROLE_SESSION_SECONDS: 7200 });
    // Act
    const line = createRoleCommand(d.roleArn, long);
    const role = JSON.parse(setupKit(d, long, 'cloudformation').body).Resources.DropshipRole.Properties;
    // Assess: the flags carry exactly the template's Path and MaxSessionDuration.
    expect(line).toBe(
      'aws iam create-role --role-name dropship-export --path /team/ --max-session-duration 7200 --assume-role-policy-document file://trust.json',
    );
    expect(line).toContain(`--path ${role.Path}`);
    expect(line).toContain(`--max-session-duration ${role.MaxSessionDuration}`);
    // A role at the root, with AWS's default hour, needs neither flag.
    expect(
      createRoleCommand(
        'arn:aws:iam::123456789012:role/dropship-export',
        settings({ DROPSHIP_ROLE_SESSION_SECONDS: 3600 }),
      ),
    ).toBe('aws iam create-role --role-name dropship-export --assume-role-policy-document file://trust.json');
  });

  it.each([
    ['without KMS', {}],
    ['with KMS', { kmsKeyArn: KMS }],
  ])('CloudFormation %s: the documents verbatim, the bucket optional with the lifecycle rules', (_, over) => {
    const d = dest(over);
    const docs = policyDocuments(d, PRINCIPAL);
    const t = JSON.parse(setupKit(d, settings({ DROPSHIP_ROLE_SESSION_SECONDS: 7200 }), 'cloudformation').body);
    const role = t.Resources.DropshipRole.Properties;
    expect(JSON.stringify(role.AssumeRolePolicyDocument)).toBe(JSON.stringify(docs.trust));
    expect(JSON.stringify(role.Policies)).toBe(
      JSON.stringify([{ PolicyName: 'dropship-write', PolicyDocument: docs.writer }]),
    );
    expect(role).toMatchObject({ RoleName: 'dropship-export', Path: '/integrations/', MaxSessionDuration: 7200 });
    const bucket = t.Resources.ExportBucket;
    expect(bucket.Condition).toBe('CreateBucket');
    expect(t.Conditions.CreateBucket).toEqual({ 'Fn::Equals': [{ Ref: 'CreateBucket' }, 'true'] });
    expect(bucket.Properties.BucketName).toEqual({ Ref: 'BucketName' });
    expect(t.Parameters.BucketName.AllowedValues).toEqual(['acme-data']);
    expect(t.Parameters.ExternalId.AllowedValues).toEqual([d.externalId]);
    // The CloudFormation rules say what dropship's lifecycle configuration says, in CloudFormation's shape.
    expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual(
      docs.lifecycle.Rules.map((r) => ({
        Id: r.ID,
        Status: 'Enabled',
        Prefix: 'exports/dropship/2',
        ...(r.Expiration ? { ExpirationInDays: 7 } : { AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
      })),
    );
    expect(bucket.Properties.BucketEncryption === undefined).toBe(d.kmsKeyArn === undefined);
  });

  it('at the bucket root: no lifecycle rules in either format (none can tell dumps from other objects)', async () => {
    const d = dest({ prefix: '' });
    const t = JSON.parse(setupKit(d, settings(), 'cloudformation').body);
    expect(t.Resources.ExportBucket.Properties.LifecycleConfiguration).toBeUndefined();
    const tf = await parseHcl('main.tf', setupKit(d, settings(), 'terraform').body);
    expect(tf.resource.aws_s3_bucket_lifecycle_configuration).toBeUndefined();
  });

  it.each([
    ['without KMS', {}],
    ['with KMS', { kmsKeyArn: KMS }],
  ])('Terraform %s: heredocs holding exactly the printed JSON, parsed by hcl2json', async (_, over) => {
    const d = dest(over);
    const docs = policyDocuments(d, PRINCIPAL);
    const tf = await parseHcl('main.tf', setupKit(d, settings(), 'terraform').body);
    const role = tf.resource.aws_iam_role.dropship[0];
    expect(role.assume_role_policy).toBe(`${JSON.stringify(docs.trust, null, 2)}\n`);
    expect(role).toMatchObject({ name: 'dropship-export', path: '/integrations/', max_session_duration: 3600 });
    expect(tf.resource.aws_iam_role_policy.dropship_write[0].policy).toBe(`${JSON.stringify(docs.writer, null, 2)}\n`);
    expect(tf.resource.aws_s3_bucket.exports[0]).toMatchObject({
      bucket: 'acme-data',
      count: `$${'{'}var.create_bucket ? 1 : 0}`,
    });
    const rules = tf.resource.aws_s3_bucket_lifecycle_configuration.exports[0].rule;
    expect(rules.map((r: { id: string }) => r.id)).toEqual(docs.lifecycle.Rules.map((r) => r.ID));
    expect(rules[0].filter[0].prefix).toBe('exports/dropship/2');
    expect(tf.resource.aws_s3_bucket_server_side_encryption_configuration === undefined).toBe(
      d.kmsKeyArn === undefined,
    );
    expect(tf.variable.create_bucket[0].default).toBe(false);
    expect(tf.output.external_id[0].value).toBe(d.externalId);
  });

  it('quick-create link: the console in the destination region, the hosted template, the parameters and the external ID', () => {
    const d = dest();
    const base = 'https://kits.s3.eu-west-1.amazonaws.com/templates';
    const kit = setupKit(d, settings({ DROPSHIP_KIT_TEMPLATE_BASE_URL: base }), 'cloudformation');
    const url = new URL(kit.quickCreateUrl!);
    expect(url.origin).toBe('https://console.aws.amazon.com');
    expect(url.pathname).toBe('/cloudformation/home');
    expect(url.searchParams.get('region')).toBe('eu-west-1');
    expect(url.hash.startsWith('#/stacks/quickcreate?')).toBe(true);
    const q = new URLSearchParams(url.hash.slice(url.hash.indexOf('?') + 1));
    expect(q.get('templateURL')).toBe(kit.templateUrl);
    expect(kit.templateUrl).toBe(kitTemplateUrl(base, 'acme_co', kit.body));
    expect(kit.templateUrl).toMatch(
      /^https:\/\/kits\.s3\.eu-west-1\.amazonaws\.com\/templates\/acme_co\/[0-9a-f]{16}\.template\.json$/,
    );
    expect(q.get('stackName')).toBe('dropship-acme-co');
    expect(q.get('param_ExternalId')).toBe(d.externalId);
    expect(q.get('param_BucketName')).toBe('acme-data');
    expect(q.get('param_CreateBucket')).toBe('false');
    // Every parameter the link fills is one the template declares, with a value it allows.
    const t = JSON.parse(kit.body);
    for (const [k, v] of q) {
      if (!k.startsWith('param_')) continue;
      expect(t.Parameters[k.slice(6)].AllowedValues).toContain(v);
    }
    // A changed destination gets another template file (content-addressed), so an old link never shows it.
    const moved = setupKit(
      dest({ bucket: 'acme-other' }),
      settings({ DROPSHIP_KIT_TEMPLATE_BASE_URL: base }),
      'cloudformation',
    );
    expect(moved.templateUrl).not.toBe(kit.templateUrl);
  });

  it('in the China partition the link goes to that console', () => {
    const d = dest({ roleArn: 'arn:aws-cn:iam::123456789012:role/r', region: 'cn-north-1' });
    const kit = setupKit(
      d,
      settings({ DROPSHIP_KIT_TEMPLATE_BASE_URL: 'https://k.s3.cn-north-1.amazonaws.com.cn/t' }),
      'cloudformation',
    );
    expect(new URL(kit.quickCreateUrl!).origin).toBe('https://console.amazonaws.cn');
  });

  it('without a template base URL: no link, and it says how to host the template instead', () => {
    const kit = setupKit(dest(), settings(), 'cloudformation');
    expect(kit.quickCreateUrl).toBeUndefined();
    expect(kit.templateUrl).toBeUndefined();
    const text = kit.instructions.join('\n');
    expect(text).toContain('DROPSHIP_KIT_TEMPLATE_BASE_URL is not set');
    expect(text).toContain('aws cloudformation deploy --template-file dropship-acme_co.template.json');
    expect(text).not.toContain('quickcreate');
  });

  it('json: the documents `dropship policy` prints, wrapped with what they are for', () => {
    const d = dest({ kmsKeyArn: KMS });
    const j = JSON.parse(setupKit(d, settings(), 'json').body);
    expect(JSON.stringify(j.documents)).toBe(JSON.stringify(policyDocuments(d, PRINCIPAL)));
    expect(j).toMatchObject({ accountId: 'acme_co', externalId: d.externalId, roleArn: d.roleArn, kmsKeyArn: KMS });
  });

  it('the CLI offers exactly the kit’s formats (its copy keeps `--help` free of the kit’s imports)', () => {
    expect([...CLI_KIT_FORMATS]).toEqual([...KIT_FORMATS]);
  });

  it('refuses without dropship’s principal, naming the setting', () => {
    expect(() => setupKit(dest(), { DROPSHIP_ROLE_SESSION_SECONDS: 3600 }, 'terraform')).toThrow(KitError);
    expect(() => setupKit(dest(), { DROPSHIP_ROLE_SESSION_SECONDS: 3600 }, 'json')).toThrow(
      /DROPSHIP_PRINCIPAL_ARN is not set/,
    );
  });

  it('HCL strings escape quotes and Terraform template sequences', async () => {
    const s = `a "q" \\ $${'{'}x} %{y} ü\n`;
    const parsed = await parseHcl('x.tf', `locals {\n  v = ${hclString(s)}\n}\n`);
    expect(parsed.locals[0].v).toBe(s.replace('${', '$${').replace('%{', '%%{'));
  });
});
