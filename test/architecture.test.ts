import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Issue 24: the house by role. `npm run check:deps` enforces the graph of .dependency-cruiser.cjs —
 * shown here on a throwaway tree holding three forbidden imports — and the drawings of that graph in
 * README.md and docs/design/architecture.md are the code's real one.
 */
const run = promisify(execFile);
const root = new URL('../', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'dropship-graph-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function file(path: string, text: string) {
  mkdirSync(dirname(join(scratch, path)), { recursive: true });
  writeFileSync(join(scratch, path), text);
}

describe('the dependency graph', () => {
  it('check:deps fails on forbidden edges, naming the groups', async () => {
    for (const f of ['.dependency-cruiser.cjs', 'tsconfig.json', 'package.json'])
      cpSync(join(root, f), join(scratch, f));
    symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'));
    file('src/store/db.ts', 'export const db = 1;\n');
    file('src/run/wiring.ts', 'export const wiring = 1;\n');
    file('src/notify/status.ts', 'export const status = 1;\n');
    file('src/pipeline/parquet/writer.ts', "import { db } from '../../store/db.js';\nexport const w = db;\n");
    file('src/destinations/port.ts', "import { wiring } from '../run/wiring.js';\nexport const p = wiring;\n");
    file('src/contracts/errors.ts', "import { status } from '../notify/status.js';\nexport const e = status;\n");
    file('src/config/settings.ts', 'export const s = 1;\n'); // allowed: nothing imports anything forbidden here
    const result = await run(
      join(root, 'node_modules/.bin/depcruise'),
      ['src', '--config', '.dependency-cruiser.cjs'],
      {
        cwd: scratch,
      },
    ).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => e,
    );
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain('group-pipeline-parquet: src/pipeline/parquet/writer.ts → src/store/db.ts');
    expect(result.stdout).toContain('group-destinations: src/destinations/port.ts → src/run/wiring.ts');
    expect(result.stdout).toContain('group-contracts: src/contracts/errors.ts → src/notify/status.ts');
    expect(result.stdout).toContain('3 dependency violations');
  });

  it('the drawings in README.md and docs/design/architecture.md are the real graph', async () => {
    const check = await run(process.execPath, ['scripts/dependency-graph.mjs', '--check'], { cwd: root }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
  });
});
