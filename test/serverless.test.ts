import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetMetadata } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../src/config/settings.js';
import { messageTasks, type TaskMessage } from '../src/contracts/task.js';
import { setupCustomer } from '../src/devstack/demo.js';
import { judge, type PolicyDocument } from '../src/devstack/iam.js';
import { REPO_ROOT } from '../src/devstack/stack.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { LAMBDA_NODE_FLAGS } from './bench/child.js';
import { startHarness } from './kit/stack-harness.js';

/**
 * `serverless package` works offline (Serverless Framework 3) and produces the deployment we mean:
 * the CloudFormation template is inspected resource by resource, and the bundled handler from the
 * zip is loaded and run, as Lambda would.
 */
const out = mkdtempSync(join(tmpdir(), 'dropship-sls-'));
// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON
let template: any;
// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON
let resources: Record<string, any>;
/** What `serverless package` printed. */
let packageOutput = '';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      cmd,
      args,
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 240_000, maxBuffer: 8 << 20 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`))
          : resolve(stdout + stderr),
    ),
  );
}

beforeAll(async () => {
  packageOutput = await run(
    process.execPath,
    [
      join(REPO_ROOT, 'node_modules/serverless/bin/serverless.js'),
      'package',
      '--stage',
      'ci',
      '--region',
      'eu-west-1',
      '--package',
      out,
    ],
    {
      // No AWS credentials at all: packaging must not need them.
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_PROFILE: '',
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      DROPSHIP_WORKER_CONCURRENCY: '6',
      // A runtime setting and the source database's parameter, given at deploy time: they reach the functions.
      DROPSHIP_GZIP_LEVEL: '7',
      DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: '/dropship/ci/source-url',
    },
  );
  template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
  resources = template.Resources;
});

afterAll(() => rmSync(out, { recursive: true, force: true }));

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

describe('serverless package (offline)', () => {
  it('schedules exactly the two slots, the drift checks an hour before each, and the sweeper every 5 minutes', () => {
    const rules = ofType('AWS::Events::Rule').map(([, r]) => ({
      cron: r.Properties.ScheduleExpression,
      target: JSON.stringify(r.Properties.Targets),
    }));
    const of = (fn: string) =>
      rules
        .filter((r) => r.target.includes(fn))
        .map((r) => r.cron)
        .sort();
    expect(of('ScheduleLambdaFunction')).toEqual(['cron(0 15 * * ? *)', 'cron(0 4 * * ? *)']);
    // No 15-minute reconcile (issue 24): the sweeper is the one periodic function (src/schedule/tidy.ts).
    expect(of('CheckLambdaFunction')).toEqual(['cron(0 14 * * ? *)', 'cron(0 3 * * ? *)']);
    expect(rules.some((r) => r.cron === 'rate(15 minutes)')).toBe(false);
    expect(of('SweeperLambdaFunction')).toEqual(['rate(5 minutes)']);
    expect(rules).toHaveLength(5);
  });

  it('sets worker timeout < task lease < visibility timeout (6 × the timeout), and room for receives', () => {
    const fns = Object.fromEntries(ofType('AWS::Lambda::Function'));
    const queues = Object.fromEntries(ofType('AWS::SQS::Queue'));
    const timeout = fns.WorkerLambdaFunction.Properties.Timeout as number;
    const env = fns.WorkerLambdaFunction.Properties.Environment.Variables;
    const lease = Number(env.DROPSHIP_TASK_LEASE_SECONDS);
    const visibility = queues.TaskQueue.Properties.VisibilityTimeout as number;
    const { maxReceiveCount } = queues.TaskQueue.Properties.RedrivePolicy;
    // A live worker's lease never runs out; a redelivery after a hard kill finds the lease expired.
    expect(lease).toBeGreaterThan(timeout);
    expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
    expect(visibility).toBeGreaterThan(lease);
    // Every receive counts: each attempt, plus duplicates and busy answers.
    expect(maxReceiveCount).toBeGreaterThanOrEqual(Number(env.DROPSHIP_TASK_MAX_ATTEMPTS) + 2);
    expect(queues.TaskQueue.Properties.MessageRetentionPeriod).toBeGreaterThan(maxReceiveCount * visibility);
  });

  it('every SQS queue a function consumes keeps a message invisible 6 × that function’s timeout (deploy red team: the dead-letter queue’s 30 s stopped the first deploy)', () => {
    const fns = Object.fromEntries(ofType('AWS::Lambda::Function'));
    const queues = Object.fromEntries(ofType('AWS::SQS::Queue'));
    const mappings = ofType('AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties);
    expect(mappings.length).toBeGreaterThanOrEqual(3);
    for (const m of mappings) {
      const queue = m.EventSourceArn['Fn::GetAtt'][0] as string;
      const fn = (m.FunctionName['Fn::GetAtt']?.[0] ?? m.FunctionName.Ref) as string;
      // SQS's default visibility is 30 s; Lambda refuses a mapping whose queue's is below the function's timeout.
      const visibility = (queues[queue].Properties.VisibilityTimeout ?? 30) as number;
      expect(visibility, `${queue} → ${fn}`).toBeGreaterThanOrEqual(6 * (fns[fn].Properties.Timeout as number));
    }
  });

  it('passes the runtime settings given at deploy time to every function, and lets them read the source database’s parameter', () => {
    const fns = ofType('AWS::Lambda::Function');
    expect(fns.length).toBeGreaterThanOrEqual(8);
    for (const [name, f] of fns) {
      const vars = f.Properties.Environment.Variables;
      expect(vars.DROPSHIP_GZIP_LEVEL, name).toBe('7');
      expect(vars.DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER, name).toBe('/dropship/ci/source-url');
    }
    const grants = JSON.stringify(
      ofType('AWS::IAM::Role')[0]![1]
        .Properties.Policies.flatMap(
          (p: { PolicyDocument: { Statement: { Sid?: string }[] } }) => p.PolicyDocument.Statement,
        )
        .find((st: { Sid?: string }) => st.Sid === 'DatabaseUrlParameter'),
    );
    expect(grants).toContain('/dropship/ci/source-url');
    expect(template.Conditions.HasSourceDatabaseUrlParameter).toBeDefined();
  });

  it('assumes only roles it asks with a dropship external ID: not a role that trusts the vendor’s account without one (judged by iam-simulate)', async () => {
    const statement = ofType('AWS::IAM::Role')[0]![1]
      .Properties.Policies.flatMap(
        (p: { PolicyDocument: { Statement: { Sid?: string }[] } }) => p.PolicyDocument.Statement,
      )
      .find((st: { Sid?: string }) => st.Sid === 'AssumeCustomerDestinationRoles');
    const vendor = {
      arn: 'arn:aws:sts::111111111111:assumed-role/dropship-ci-eu-west-1-lambdaRole/worker',
      roleArn: 'arn:aws:iam::111111111111:role/dropship-ci-eu-west-1-lambdaRole',
      accountId: '111111111111',
      policies: [{ Version: '2012-10-17', Statement: [statement] } as PolicyDocument],
    };
    // Roles that trust the vendor's account (its root): a customer's, and an admin role of the vendor's own.
    const trustingVendor = (withExternalId: boolean): PolicyDocument => ({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::111111111111:root' },
          Action: 'sts:AssumeRole',
          ...(withExternalId ? { Condition: { StringEquals: { 'sts:ExternalId': 'dropship-abc123' } } } : {}),
        },
      ],
    });
    const assume = (role: string, account: string, trust: PolicyDocument, externalId?: string) =>
      judge({
        principal: vendor,
        action: 'sts:AssumeRole',
        resource: role,
        resourceAccountId: account,
        resourcePolicy: trust,
        context: { 'sts:ExternalId': externalId },
      });
    const customerRole = 'arn:aws:iam::222222222222:role/dropship-destination';
    expect(await assume(customerRole, '222222222222', trustingVendor(true), 'dropship-abc123')).toBe('Allowed');
    expect(await assume(customerRole, '222222222222', trustingVendor(false))).not.toBe('Allowed');
    expect(await assume(customerRole, '222222222222', trustingVendor(false), 'someone-else')).not.toBe('Allowed');
    const ownAdmin = 'arn:aws:iam::111111111111:role/OrganizationAccountAccessRole';
    expect(await assume(ownAdmin, '111111111111', trustingVendor(false))).not.toBe('Allowed');
  });

  it('consumes the dead-letter queue with a function that fails the run of the task', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties);
    const dlq = mappings.find((p) => JSON.stringify(p.EventSourceArn).includes('TaskDeadLetterQueue'));
    expect(dlq).toMatchObject({ BatchSize: 1, FunctionResponseTypes: ['ReportBatchItemFailures'] });
    expect(JSON.stringify(dlq.FunctionName)).toContain('DeadLetterLambdaFunction');
  });

  it('alarms on our failures (not the customers’), stuck runs, missed slots, queue age, function errors and throttles, and the dead-letter queue', () => {
    const alarms = Object.fromEntries(ofType('AWS::CloudWatch::Alarm'));
    expect(Object.keys(alarms).sort()).toEqual([
      'FunctionErrorsAlarm',
      'FunctionThrottlesAlarm',
      'MissedSlotsAlarm',
      'OpenDeadLetterQueueAlarm',
      'OurFailuresAlarm',
      'OutcomesUndeliveredAlarm',
      'StuckRunsAlarm',
      'TaskDeadLetterQueueAlarm',
      'TaskQueueAgeAlarm',
    ]);
    // The slot gauges the sweeper logs (src/schedule/slot-status.ts): our failures only.
    expect(alarms.OurFailuresAlarm.Properties).toMatchObject({
      Namespace: 'Dropship/ci',
      MetricName: 'SlotFailedOurs',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: 'AlarmTopic' }],
    });
    expect(alarms.StuckRunsAlarm.Properties.MetricName).toBe('SlotStuck');
    expect(alarms.MissedSlotsAlarm.Properties.MetricName).toBe('SlotMissed');
    // The outcome outbox's gauge the sweeper logs (src/schedule/tidy.ts).
    expect(alarms.OutcomesUndeliveredAlarm.Properties).toMatchObject({
      MetricName: 'OutcomesUndelivered',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(alarms.TaskQueueAgeAlarm.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['TaskQueue', 'QueueName'] } }],
    });
    // Every function's errors (and throttles) are summed by one alarm each.
    for (const [alarm, metric] of [
      ['FunctionErrorsAlarm', 'Errors'],
      ['FunctionThrottlesAlarm', 'Throttles'],
    ] as const) {
      const stats = alarms[alarm].Properties.Metrics.filter((m: { MetricStat?: unknown }) => m.MetricStat);
      expect(
        stats.map((m: { MetricStat: { Metric: { MetricName: string } } }) => m.MetricStat.Metric.MetricName),
      ).toEqual(Array(ofType('AWS::Lambda::Function').length).fill(metric));
      expect(
        stats
          .map(
            (m: { MetricStat: { Metric: { Dimensions: { Value: { Ref: string } }[] } } }) =>
              m.MetricStat.Metric.Dimensions[0]!.Value.Ref,
          )
          .sort(),
      ).toEqual(Object.keys(Object.fromEntries(ofType('AWS::Lambda::Function'))).sort());
    }
    expect(alarms.TaskDeadLetterQueueAlarm.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['TaskDeadLetterQueue', 'QueueName'] } }],
      Threshold: 1,
      AlarmActions: [{ Ref: 'AlarmTopic' }],
    });
    expect(resources.AlarmTopic.Type).toBe('AWS::SNS::Topic');
    // The namespace the alarm watches is the one the functions write their metrics to.
    const fns = Object.fromEntries(ofType('AWS::Lambda::Function'));
    for (const f of Object.values(fns))
      expect(f.Properties.Environment.Variables.DROPSHIP_METRICS_NAMESPACE).toBe('Dropship/ci');
  });

  it('has the task queue with a dead-letter queue and a partial-batch event source mapping on the worker', () => {
    const queues = Object.fromEntries(ofType('AWS::SQS::Queue'));
    expect(queues.TaskQueue.Properties.RedrivePolicy.deadLetterTargetArn).toEqual({
      'Fn::GetAtt': ['TaskDeadLetterQueue', 'Arn'],
    });
    expect(queues.TaskQueue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(5400);
    const mapping = ofType('AWS::Lambda::EventSourceMapping').find(([, m]) =>
      JSON.stringify(m.Properties.EventSourceArn).includes('"TaskQueue"'),
    )![1] as { Properties: Record<string, unknown> };
    expect(mapping!.Properties).toMatchObject({
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      EventSourceArn: { 'Fn::GetAtt': ['TaskQueue', 'Arn'] },
      // No more pollers than the worker's reserved concurrency (DROPSHIP_WORKER_CONCURRENCY 6 above).
      ScalingConfig: { MaximumConcurrency: 6 },
    });
    expect(JSON.stringify(mapping!.Properties.FunctionName)).toContain('WorkerLambdaFunction');
  });

  it('opens a slot through the open queue: a dead-letter queue, 6 × the opener timeout, a bounded partial-batch mapping', () => {
    const queues = Object.fromEntries(ofType('AWS::SQS::Queue'));
    const fns = Object.fromEntries(ofType('AWS::Lambda::Function'));
    const timeout = fns.OpenRunsLambdaFunction.Properties.Timeout as number;
    expect(queues.OpenQueue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
    expect(queues.OpenQueue.Properties.RedrivePolicy).toMatchObject({
      deadLetterTargetArn: { 'Fn::GetAtt': ['OpenDeadLetterQueue', 'Arn'] },
      maxReceiveCount: expect.any(Number),
    });
    const { maxReceiveCount } = queues.OpenQueue.Properties.RedrivePolicy;
    expect(queues.OpenQueue.Properties.MessageRetentionPeriod).toBeGreaterThan(
      maxReceiveCount * queues.OpenQueue.Properties.VisibilityTimeout,
    );
    const mapping = ofType('AWS::Lambda::EventSourceMapping').find(([, m]) =>
      JSON.stringify(m.Properties.EventSourceArn).includes('"OpenQueue"'),
    )![1] as { Properties: Record<string, unknown> };
    expect(mapping.Properties).toMatchObject({
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    expect(JSON.stringify(mapping.Properties.FunctionName)).toContain('OpenRunsLambdaFunction');
    // The schedule only enqueues: it may send to the open queue; openRuns receives and deletes.
    const role = ofType('AWS::IAM::Role')[0]![1] as {
      Properties: {
        Policies: { PolicyDocument: { Statement: { Sid?: string; Action: string[]; Resource: unknown }[] } }[];
      };
    };
    const open = role.Properties.Policies.flatMap((p) => p.PolicyDocument.Statement).find(
      (st) => st.Sid === 'SlotOpenQueue',
    );
    expect(open?.Action).toEqual(
      expect.arrayContaining(['sqs:SendMessage', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']),
    );
    expect(open?.Resource).toEqual([{ 'Fn::GetAtt': ['OpenQueue', 'Arn'] }]);
    expect(template.Outputs.OpenQueueUrl.Value).toEqual({ Ref: 'OpenQueue' });
  });

  it('runs nodejs24.x on arm64 with the intended memory, timeouts, concurrency and VPC', () => {
    const fns = Object.fromEntries(ofType('AWS::Lambda::Function'));
    expect(Object.keys(fns).sort()).toEqual([
      'ApiLambdaFunction',
      'CheckLambdaFunction',
      'DeadLetterLambdaFunction',
      'ExportAccountLambdaFunction',
      'OpenRunsLambdaFunction',
      'ScheduleLambdaFunction',
      'SweeperLambdaFunction',
      'WorkerLambdaFunction',
    ]);
    for (const [name, f] of Object.entries(fns)) {
      expect(f.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        MemorySize: name === 'WorkerLambdaFunction' ? 1769 : 1024,
      });
      expect(f.Properties.VpcConfig.SubnetIds).toHaveLength(2);
      expect(f.Properties.Environment.Variables.DROPSHIP_TASK_QUEUE_URL).toEqual({ Ref: 'TaskQueue' });
      expect(f.Properties.Environment.Variables.DROPSHIP_OPEN_QUEUE_URL).toEqual({ Ref: 'OpenQueue' });
      expect(f.Properties.Environment.Variables.DROPSHIP_DATABASE_URL_SSM_PARAMETER).toBe('/dropship/ci/database-url');
      expect(f.Properties.Environment.Variables.DATABASE_URL).toBeUndefined();
      expect(f.Properties.Environment.Variables.DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER).toBe('/dropship/ci/webhook-key');
      expect(f.Properties.Environment.Variables.DROPSHIP_WEBHOOK_KEY).toBeUndefined();
      // Customers trust the functions' own role (the kit's and `dropship policy`'s principal); no template host by default.
      expect(f.Properties.Environment.Variables.DROPSHIP_PRINCIPAL_ARN).toEqual({
        'Fn::GetAtt': ['IamRoleLambdaExecution', 'Arn'],
      });
      expect(f.Properties.Role).toEqual({ 'Fn::GetAtt': ['IamRoleLambdaExecution', 'Arn'] });
      expect(f.Properties.Environment.Variables.DROPSHIP_KIT_TEMPLATE_BASE_URL).toBe('');
    }
    expect(resources.IamRoleLambdaExecution.Type).toBe('AWS::IAM::Role');
    expect(fns.WorkerLambdaFunction.Properties.Timeout).toBe(900);
    expect(fns.WorkerLambdaFunction.Properties.ReservedConcurrentExecutions).toBe(6);
    expect(fns.ScheduleLambdaFunction.Properties.Timeout).toBe(300);
    // Serverless Framework 3's schema predates nodejs24.x: its only configuration warning is that one.
    const invalid = [...packageOutput.matchAll(/^\s+at '([^']+)': (.*)$/gm)].map((m) => [m[1], m[2]]);
    expect(invalid).toEqual([
      ['provider.runtime', expect.stringContaining('must be equal to one of the allowed values')],
    ]);
  });

  it('serves the HTTP API: exactly the documented routes (schemas/openapi.json), every one AWS_IAM-authorised, to the api function', () => {
    const doc = JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/openapi.json'), 'utf8')) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(documented);
    for (const r of routes) expect(r.AuthorizationType, r.RouteKey).toBe('AWS_IAM');
    const apis = ofType('AWS::ApiGatewayV2::Api');
    expect(apis.map(([, a]) => a.Properties.ProtocolType)).toEqual(['HTTP']);
    const integrations = ofType('AWS::ApiGatewayV2::Integration').map(([, i]) => i.Properties);
    expect(integrations).toHaveLength(1);
    expect(integrations[0].PayloadFormatVersion).toBe('2.0');
    expect(JSON.stringify(integrations[0].IntegrationUri)).toContain('ApiLambdaFunction');
    expect(
      Object.fromEntries(ofType('AWS::Lambda::Function')).ApiLambdaFunction.Properties.Timeout,
    ).toBeLessThanOrEqual(30);
  });

  it("ships the compression workers' packages (wasm) next to the worker's bundle", () => {
    // Zip entry names are stored uncompressed: the package files must be in the archive.
    const zip = readFileSync(join(out, 'worker.zip')).toString('latin1');
    for (const f of [
      'handlers/worker.mjs',
      'node_modules/libdeflate/index.js',
      'node_modules/libdeflate/dist/libdeflate.wasm.mjs',
      // The CommonJS entry is what compression.ts resolves to find the package; the ES build and its wasm are loaded.
      'node_modules/snappy-wasm/cjs/snappy.js',
      'node_modules/snappy-wasm/es/snappy.js',
      'node_modules/snappy-wasm/es/snappy_bg.wasm',
    ]) {
      expect(zip.includes(f), f).toBe(true);
    }
  });

  it('grants sts:AssumeRole and nothing on any S3 bucket', () => {
    const role = ofType('AWS::IAM::Role')[0]![1] as {
      Properties: { Policies: { PolicyDocument: { Statement: { Action: string | string[] }[] } }[] };
    };
    const actions = role!.Properties.Policies.flatMap((p) =>
      p.PolicyDocument.Statement.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])),
    );
    expect(actions).toContain('sts:AssumeRole');
    expect(actions.filter((a) => /^s3:|^\*$/.test(a))).toEqual([]);
    expect(actions).toEqual(
      expect.arrayContaining(['sqs:SendMessage', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'ssm:GetParameter']),
    );
  });

  it('ships a worker bundle that exports real table tasks from the zip, as Lambda would run it (GZIP and SNAPPY)', async () => {
    // Prepare: the local stack, two customers, each with a table of 5,000 rows (pages of 20-60 KB: the zip's compression
    // workers load each codec's package) and one of 10 (pages compressed on the main thread), and a run each whose
    // tasks are waiting.
    const harness = await startHarness();
    try {
      const { stack, pool, registry, ledger } = harness;
      const env = { ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true', DROPSHIP_LOG_LEVEL: 'silent' };
      Object.assign(process.env, env);
      const messages: TaskMessage[] = [];
      const customers = [
        ['zipco', 'gzip'],
        ['zipsnap', 'snappy'],
      ] as const;
      for (const [i, [accountId, compression]] of customers.entries()) {
        await pool.query(
          `create schema ${accountId};
           create table ${accountId}.t as select i as id, 'row ' || i as label from generate_series(1, 5000) i;
           create table ${accountId}.small as select i as id, 'row ' || i as label from generate_series(1, 10) i;`,
        );
        const c = await setupCustomer(stack, registry, {
          accountId,
          awsAccountId: `22000000000${i + 1}`,
          bucket: `${accountId}-data`,
          schema: accountId,
          compression,
        });
        await startFanOutRun(c.destination, {
          sourceUrl: stack.databaseUrl,
          ledger,
          settings: loadSettings(env),
          queue: { send: async (m) => void messages.push(...m) },
          trigger: 'manual',
        });
      }
      // Small tables of one run are packed into one message (src/contracts/task.ts): two tables per run.
      expect(messages.flatMap((m) => messageTasks(m))).toHaveLength(4);
      const dir = join(out, 'worker');
      await run('python3', [
        '-c',
        'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])',
        join(out, 'worker.zip'),
        dir,
      ]);
      // Act: the bundled handler, loaded from the zip in a fresh Node process with the template's NODE_OPTIONS, gets the
      // SQS event.
      const nodeOptions = template.Resources.WorkerLambdaFunction.Properties.Environment.Variables
        .NODE_OPTIONS as string;
      const event = { Records: messages.map((m, i) => ({ messageId: `m${i}`, body: JSON.stringify(m) })) };
      const stdout = await run(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(join(dir, 'handlers/worker.mjs'))});
           const r = await m.handler(${JSON.stringify(event)}, { getRemainingTimeInMillis: () => 600000 });
           console.log(JSON.stringify(r)); process.exit(0);`,
        ],
        { ...env, NODE_OPTIONS: nodeOptions },
      );
      // Assess
      expect(JSON.parse(stdout.trim().split('\n').at(-1)!), stdout).toEqual({ batchItemFailures: [] });
      // The bench measures what Lambda runs: its child's flags are the template's.
      for (const flag of LAMBDA_NODE_FLAGS) expect(nodeOptions.split(' ')).toContain(flag);
      for (const [accountId, compression] of customers) {
        expect(await stack.s3.keys(`${accountId}-data`)).toContain('receipt.json');
        const [run0] = await ledger.listRuns({ accountId });
        expect(run0).toMatchObject({ status: 'succeeded', trigger: 'manual' });
        // The local S3's own file for the object (s3rver keeps each object's bytes beside its key).
        const receipt = JSON.parse(
          readFileSync(join(stack.s3.directory, `${accountId}-data`, 'receipt.json._S3rver_object'), 'utf8'),
        );
        expect(receipt.compression).toBe(compression);
        // And the files' own codec, from their footers (hyparquet's reader, not the writer's).
        const shards = (await stack.s3.keys(`${accountId}-data`)).filter(
          (k) => k.endsWith('.parquet') || k.endsWith('.parquet.gz'),
        );
        expect(shards).toHaveLength(2);
        for (const key of shards) {
          const bytes = readFileSync(join(stack.s3.directory, `${accountId}-data`, `${key}._S3rver_object`));
          const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
          for (const chunk of meta.row_groups.flatMap((g) => g.columns))
            expect(chunk.meta_data?.codec).toBe(compression.toUpperCase());
        }
      }
    } finally {
      await harness.stop();
    }
  });
});
