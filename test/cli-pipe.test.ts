import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../src/cli/bin.mjs', import.meta.url));

describe('dropship piped into a reader that stops early', () => {
  it('ends quietly with the command’s exit code, not an EPIPE stack trace', async () => {
    // Prepare: a reader that has gone before the command writes (as `| head` after its lines).
    const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // Act
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    // Assess
    expect(stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
    expect(code).toBe(0);
  });
});
