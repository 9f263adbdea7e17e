import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/devstack/stack.js';

/**
 * One Node for tests, CLI and Lambda: the major that runs this test (npm scripts run on the
 * `node` devDependency's binary, node_modules/.bin/node) is the Lambda runtime's in serverless.yml,
 * the esbuild target there and package.json's engines.
 */
const serverlessYml = readFileSync(join(REPO_ROOT, 'serverless.yml'), 'utf8');
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const majorOf = (v: string): number => Number(/^v?(\d+)\./.exec(v)?.[1]);

describe('the Node.js major', () => {
  it('is the same in serverless.yml, package.json (engines, the node package) and the process running the tests', () => {
    const runtime = /^\s+runtime:\s*nodejs(\d+)\.x\s*$/m.exec(serverlessYml)?.[1];
    const target = /^\s+target:\s*node(\d+)\s*$/m.exec(serverlessYml)?.[1];
    const engines = /^>=\s*(\d+)(?:\.\d+){0,2}\s+<\s*(\d+)$/.exec(pkg.engines.node);
    expect(runtime, 'provider.runtime in serverless.yml').toBeDefined();
    const major = Number(runtime);
    expect(Number(target), 'custom.esbuild.target in serverless.yml').toBe(major);
    expect(engines, `engines.node "${pkg.engines.node}" is ">=N <N+1"`).not.toBeNull();
    expect([Number(engines![1]), Number(engines![2])]).toEqual([major, major + 1]);
    expect(majorOf(pkg.devDependencies.node ?? ''), 'the node devDependency').toBe(major);
    expect(majorOf(process.versions.node), `this process runs ${process.version}`).toBe(major);
    // The customers' receipt-trigger example deploys on the same runtime.
    const example = readFileSync(join(REPO_ROOT, 'examples/receipt-trigger/serverless.yml'), 'utf8');
    expect(Number(/^\s+runtime:\s*nodejs(\d+)\.x\s*$/m.exec(example)?.[1]), 'the example’s runtime').toBe(major);
    expect(Number(/^\s+target:\s*node(\d+)\s*$/m.exec(example)?.[1]), 'the example’s esbuild target').toBe(major);
  });

  it('the command refuses another major with one line (a production install runs on the host’s Node: npm only warns about engines)', async () => {
    const bin = readFileSync(join(REPO_ROOT, 'src/cli/bin.mjs'), 'utf8');
    expect(Number(/export const NODE_MAJOR = (\d+);/.exec(bin)?.[1]), 'NODE_MAJOR in src/cli/bin.mjs').toBe(
      majorOf(process.version),
    );
    // Another Node on this machine (the host's, outside node_modules), if it has one of another major.
    const path = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((p) => !p.startsWith(join(REPO_ROOT, 'node_modules')));
    const other = path
      .map((d) => join(d, 'node'))
      .find((n) => {
        try {
          return majorOf(execFileSync(n, ['--version'], { encoding: 'utf8' }).trim()) !== majorOf(process.version);
        } catch {
          return false;
        }
      });
    if (!other) {
      console.warn('no Node of another major on this machine: the refusal itself is not run here');
      return;
    }
    const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
      execFile(other, [join(REPO_ROOT, 'src/cli/bin.mjs'), '--version'], { timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr, stdout }),
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^dropship needs Node\.js \d+ \(the Lambda runtime's\); this is v\d+\.\d+\.\d+\. /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('runs `npx dropship --version`, from a shell whose own node may be another', async () => {
    // The shell's PATH without the project's node_modules/.bin (vitest's runner put it there).
    const path = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((p) => !p.startsWith(join(REPO_ROOT, 'node_modules')))
      .join(delimiter);
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'npx',
        ['--no', '--', 'dropship', '--version'],
        { cwd: REPO_ROOT, env: { PATH: path, HOME: process.env.HOME }, timeout: 60_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    const runtime = Number(/^\s+runtime:\s*nodejs(\d+)\.x\s*$/m.exec(serverlessYml)?.[1]);
    expect(out).toMatch(/^dropship \d+\.\d+\.\d+ \(Node\.js v\d+\.\d+\.\d+\)\n$/);
    expect(majorOf(/Node\.js (v[\d.]+)/.exec(out)![1]!)).toBe(runtime);
  });
});
