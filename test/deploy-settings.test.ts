import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployConfig } from '../src/config/deploy.js';
import { loadSettings, settingsSchema } from '../src/config/settings.js';
import { LocalStack, REPO_ROOT } from '../src/devstack/stack.js';
import { dropship } from './kit/index.js';

/**
 * Issue 23: deploy-time settings are settings, and slots have one source. The variables the docs tell
 * an operator to export are accepted by every later `dropship` command in the same shell; every
 * variable serverless.yml reads is in the settings schema; the crons serverless.yml deploys derive
 * from the slot settings that decide which accounts are due.
 */

/** `export A=1 B=2` lines of the docs' shell blocks (README.md and docs/). */
function exportedVariables(): Record<string, string> {
  const files = ['README.md', ...markdownUnder('docs')];
  const vars: Record<string, string> = {};
  for (const f of files) {
    for (const line of readFileSync(join(REPO_ROOT, f), 'utf8').split('\n')) {
      const m = /^export ((?:[A-Z_][A-Z0-9_]*=\S+\s*)+)/.exec(line.trim());
      if (!m) continue;
      for (const pair of m[1]!.trim().split(/\s+/)) {
        const [k, v] = pair.split('=', 2) as [string, string];
        if (k.startsWith('DROPSHIP_')) vars[k] = v;
      }
    }
  }
  return vars;
}

function markdownUnder(dir: string): string[] {
  try {
    return readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

function serverless(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [join(REPO_ROOT, 'node_modules/serverless/bin/serverless.js'), ...args],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, SLS_TELEMETRY_DISABLED: '1', ...env },
        timeout: 120_000,
        maxBuffer: 8 << 20,
      },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: `${stdout}\n${stderr}` }),
    ),
  );
}

describe('deploy-time settings', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await LocalStack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('every variable the docs export is a valid setting, and a CLI command runs with all of them set', async () => {
    const vars = exportedVariables();
    // The deploy section's variables are among them (the ones that used to break the CLI).
    for (const v of ['DROPSHIP_VPC_SECURITY_GROUP_ID', 'DROPSHIP_VPC_SUBNET_A', 'DROPSHIP_WORKER_CONCURRENCY'])
      expect(Object.keys(vars)).toContain(v);
    expect(() => loadSettings(vars)).not.toThrow();
    const r = await dropship(stack, ['runs', 'list'], { env: vars });
    expect(r.stderr).not.toMatch(/not a dropship setting|Invalid configuration/);
    expect(r.code).toBe(0);
  });

  it('every variable serverless.yml reads is a dropship setting', () => {
    const yml = readFileSync(join(REPO_ROOT, 'serverless.yml'), 'utf8');
    const read = [...yml.matchAll(/\$\{env:(\w+)/g)].map((m) => m[1]!);
    expect(read.length).toBeGreaterThan(0);
    for (const v of read) expect(Object.keys(settingsSchema.shape), v).toContain(v);
  });
});

describe('slots have one source', () => {
  it('the crons derive from the slot settings: the schedule at each slot, the drift check an hour before', () => {
    const def = deployConfig({});
    expect(def.scheduleEvents.map((e) => e.schedule.rate)).toEqual(['cron(0 4 * * ? *)', 'cron(0 15 * * ? *)']);
    // No 15-minute reconcile (issue 24): run outcomes are the sweeper's, every 5 minutes.
    expect(def.checkEvents.map((e) => e.schedule.rate)).toEqual(['cron(0 3 * * ? *)', 'cron(0 14 * * ? *)']);
    const c = deployConfig({ DROPSHIP_PAID_SLOTS: '00:30,12:45', DROPSHIP_FREE_SLOTS: '00:30' });
    expect(c.scheduleEvents.map((e) => e.schedule.rate)).toEqual(['cron(30 0 * * ? *)', 'cron(45 12 * * ? *)']);
    // An hour before 00:30 is 23:30 the day before.
    expect(c.checkEvents.map((e) => e.schedule.rate).slice(0, 2)).toEqual([
      'cron(30 23 * * ? *)',
      'cron(45 11 * * ? *)',
    ]);
    expect([c.paidSlots, c.freeSlots]).toEqual(['00:30,12:45', '00:30']);
  });

  it('serverless.yml deploys the crons and the functions’ slot settings from the same values; a bad slot stops it', async () => {
    const ok = await serverless(['print', '--format', 'json', '--stage', 'ci'], {
      DROPSHIP_PAID_SLOTS: '05:30,17:00',
      DROPSHIP_FREE_SLOTS: '05:30',
      DROPSHIP_KIT_TEMPLATE_BASE_URL: 'https://kits.s3.eu-west-1.amazonaws.com/templates/',
    });
    expect(ok.code, ok.out).toBe(0);
    const config = JSON.parse(ok.out.slice(ok.out.indexOf('\n{') + 1, ok.out.lastIndexOf('}') + 1));
    const rates = (fn: string) =>
      (config.functions[fn].events as { schedule: { rate: string[] | string } }[]).map(
        (e) => [e.schedule.rate].flat()[0],
      );
    expect(rates('schedule')).toEqual(['cron(30 5 * * ? *)', 'cron(0 17 * * ? *)']);
    expect(rates('check')).toEqual(['cron(30 4 * * ? *)', 'cron(0 16 * * ? *)']);
    expect(config.provider.environment.DROPSHIP_PAID_SLOTS).toBe('05:30,17:00');
    expect(config.provider.environment.DROPSHIP_FREE_SLOTS).toBe('05:30');
    // The setup kit's template host reaches the functions validated (trailing slash dropped); unset, it is empty.
    expect(config.provider.environment.DROPSHIP_KIT_TEMPLATE_BASE_URL).toBe(
      'https://kits.s3.eu-west-1.amazonaws.com/templates',
    );
    expect(deployConfig({}).kitTemplateBaseUrl).toBe('');
    // The task queue's pollers: the reserved concurrency, within SQS's 2–1,000; fewer than 2 workers stop the deploy.
    expect([2, 8, 5000].map((n) => deployConfig({ DROPSHIP_WORKER_CONCURRENCY: String(n) }).workerPollers)).toEqual([
      2, 8, 1000,
    ]);
    expect(() => deployConfig({ DROPSHIP_WORKER_CONCURRENCY: '1' })).toThrow(
      /DROPSHIP_WORKER_CONCURRENCY: at least 2 for a deployment/,
    );
    expect(loadSettings({ DROPSHIP_KIT_TEMPLATE_BASE_URL: '' }).DROPSHIP_KIT_TEMPLATE_BASE_URL).toBeUndefined();

    const bad = await serverless(['print', '--format', 'json', '--stage', 'ci'], { DROPSHIP_PAID_SLOTS: '25:00' });
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('DROPSHIP_PAID_SLOTS: HH:MM[,HH:MM…] (UTC, 00:00–23:59)');
  });
});

describe('what a deployment does with each setting it is given (deploy red team: all but a fixed list were dropped)', () => {
  it('passes every runtime setting given to every function, as given', async () => {
    const c = deployConfig({
      DROPSHIP_TABLE_THREADS: '2',
      DROPSHIP_GZIP_LEVEL: '7',
      DROPSHIP_PAUSE_AFTER_FAILURES: '5',
    });
    expect(c.forwarded).toEqual({
      DROPSHIP_TABLE_THREADS: '2',
      DROPSHIP_GZIP_LEVEL: '7',
      DROPSHIP_PAUSE_AFTER_FAILURES: '5',
    });
    // Those the deployment reads itself are not passed again (it sets what the functions need of them).
    expect(deployConfig({ DROPSHIP_PAID_SLOTS: '05:30', DROPSHIP_ALARM_EMAIL: 'ops@example.com' }).forwarded).toEqual(
      {},
    );
    // And through serverless.yml: in every function's environment.
    const printed = await serverless(['print', '--format', 'json', '--stage', 'ci'], {
      DROPSHIP_TABLE_THREADS: '2',
      DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: '/dropship/ci/source-url',
    });
    expect(printed.code, printed.out).toBe(0);
    const config = JSON.parse(printed.out.slice(printed.out.indexOf('\n{') + 1, printed.out.lastIndexOf('}') + 1));
    const fns = Object.entries(config.functions as Record<string, { environment?: Record<string, string> }>);
    expect(fns.length).toBeGreaterThanOrEqual(8);
    for (const [name, fn] of fns) expect(fn.environment, name).toEqual({ DROPSHIP_TABLE_THREADS: '2' });
    expect(config.provider.environment.DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER).toBe('/dropship/ci/source-url');
  });

  it('refuses, each with what to do, a setting serverless.yml fixes, a secret, and a local stack’s — all at once', () => {
    const e = (() => {
      try {
        deployConfig({
          DROPSHIP_SOURCE_DATABASE_URL: 'postgres://reader:pw@replica/data',
          DROPSHIP_TASK_LEASE_SECONDS: '1200',
          DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
          DROPSHIP_WEBHOOK_KEY: Buffer.alloc(32).toString('base64'),
          DATABASE_URL: 'postgres://admin@registry/dropship', // the CLI's, in the operator's shell: neither refused nor passed
        });
      } catch (x) {
        return x as Error;
      }
      return undefined;
    })();
    expect(e?.message).toContain('Invalid configuration for a deployment');
    expect(e?.message).toContain(
      'DROPSHIP_SOURCE_DATABASE_URL: a secret never goes into a function’s configuration'.replace('’', "'"),
    );
    expect(e?.message).toContain('set DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER to its name');
    expect(e?.message).toContain('DROPSHIP_TASK_LEASE_SECONDS: serverless.yml sets it for the functions');
    expect(e?.message).toContain("DROPSHIP_S3_FORCE_PATH_STYLE: the local stack's setting, not a deployment's");
    expect(e?.message).toContain('DROPSHIP_WEBHOOK_KEY: a secret');
    expect(e?.message).not.toMatch(/(^|\s)DATABASE_URL:/m);
    // The secret's value is never in the message.
    expect(e?.message).not.toContain('replica');
    // The operator's CLI settings, often in the deploy's shell: neither refused nor passed to the functions.
    expect(
      deployConfig({
        DATABASE_URL: 'postgres://admin@registry/dropship',
        DROPSHIP_PRINCIPAL_ARN: 'arn:aws:iam::111111111111:role/dropship-prod-eu-west-1-lambdaRole',
        DROPSHIP_API_URL: 'https://api.example.com',
      }).forwarded,
    ).toEqual({});
  });

  it('`serverless deploy` without the VPC stops before anything is created; packaging offline uses placeholders', async () => {
    expect(() => deployConfig({}, { deploying: true })).toThrow(
      /DROPSHIP_VPC_SECURITY_GROUP_ID: required to deploy[\s\S]*DROPSHIP_VPC_SUBNET_A[\s\S]*DROPSHIP_VPC_SUBNET_B/,
    );
    const vpc = {
      DROPSHIP_VPC_SECURITY_GROUP_ID: 'sg-0123456789abcdef0',
      DROPSHIP_VPC_SUBNET_A: 'subnet-0123456789abcdef0',
      DROPSHIP_VPC_SUBNET_B: 'subnet-0123456789abcdef1',
    };
    expect(deployConfig(vpc, { deploying: true }).securityGroupId).toBe('sg-0123456789abcdef0');
    expect(deployConfig({}).securityGroupId).toBe('sg-0000000000000000a');
    // The framework's own deploy command, no AWS credentials: refused while resolving serverless.yml.
    const deploy = await serverless(['deploy', '--stage', 'ci'], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' });
    expect(deploy.code).toBe(1);
    expect(deploy.out).toContain('DROPSHIP_VPC_SECURITY_GROUP_ID: required to deploy');
  });
});
