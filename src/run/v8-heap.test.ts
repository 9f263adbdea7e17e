import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { heapFlags } from './v8-heap.js';

const run = promisify(execFile);
const MODULE = fileURLToPath(new URL('./v8-heap.ts', import.meta.url));

/**
 * A process like an export: a heap it keeps (~15 MB) and 2 GiB of half-MiB buffers passing through it, none kept.
 * Counts V8's mark-compacts (--trace-gc) with and without the flag set from code after start-up, as the wiring does.
 */
async function markCompacts(mode: 'on' | 'off'): Promise<number> {
  const script = `
    import { tuneHeapForExports } from ${JSON.stringify(MODULE)};
    if (process.argv[1] === 'on' && tuneHeapForExports().length === 0) throw new Error('flags not set');
    const kept = [];
    for (let i = 0; i < 200000; i++) kept.push({ i, name: 'row ' + i });
    let sum = 0;
    console.log('buffers from here');
    for (let i = 0; i < 4096; i++) {
      const b = Buffer.allocUnsafe(512 * 1024);
      b[i] = i & 0xff;
      sum += b[i];
    }
    console.log('kept', kept.length, sum);
  `;
  const { stdout, stderr } = await run(
    process.execPath,
    ['--trace-gc', '--max-semi-space-size=1', '--import', 'tsx', '--input-type=module', '-e', script, mode],
    { maxBuffer: 1 << 24 },
  );
  expect(stdout).toContain('kept 200000');
  expect(stderr).not.toMatch(/unrecognized flag|error/i);
  // Only those while the buffers pass (building the kept heap starts a few either way).
  const during = stdout.slice(stdout.indexOf('buffers from here'));
  return during.split('\n').filter((l) => l.includes('Mark-Compact')).length;
}

describe('tuneHeapForExports', () => {
  it('counts buffers by what they hold on V8 13.6 up to 14.8 (the default from 14.8), and sets the growing factor on all', () => {
    const external = '--external-memory-accounted-in-global-limit';
    const growing = '--heap-growing-percent=50';
    expect(heapFlags('13.6.233.17-node.53')).toEqual([external, growing]); // Node 24
    expect(heapFlags('14.7.1')).toEqual([external, growing]);
    expect(heapFlags('14.8.0')).toEqual([growing]);
    expect(heapFlags('15.0.2')).toEqual([growing]);
    expect(heapFlags('not a version')).toEqual([growing]);
    expect(heapFlags('12.4.254.21-node.33')).toEqual([growing]); // Node 22: it does not know the flag
    expect(heapFlags('11.3.244.8-node.30')).toEqual([growing]); // Node 20
  });

  it.runIf(heapFlags(process.versions.v8).length === 2)(
    'stops buffers that are not kept from starting mark-compacts of the heap that is',
    async () => {
      const [off, on] = await Promise.all([markCompacts('off'), markCompacts('on')]);
      // Without it V8 marks the whole heap for every few MiB of buffers allocated since the last mark-compact.
      expect(off).toBeGreaterThanOrEqual(8);
      expect(on).toBeLessThanOrEqual(off / 4);
    },
    60_000,
  );
});
