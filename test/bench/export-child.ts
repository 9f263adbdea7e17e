/**
 * One dropship export in its own process, so its peak RSS is dropship's alone (the local S3 and
 * Postgres run elsewhere). Prints one JSON line: rows, bytes, seconds, maxRssBytes.
 *
 * A large table's second reading thread (src/pipeline/threads/) evaluates this bundle too: only the main thread exports.
 */
import { readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { loadSettings } from '../../src/config/settings.js';
import { createLogger } from '../../src/log/logger.js';
import { exportAccount } from '../../src/run/drivers/in-process.js';
import { LogReporter } from '../../src/run/progress/reporter.js';
import { Wiring } from '../../src/run/wiring.js';

async function main(): Promise<void> {
  // The registry, ledger and source as the Lambda handlers wire them (src/run/wiring.ts).
  const wiring = new Wiring({ settings: loadSettings() });
  const dest = await (await wiring.registry()).get(process.argv[2] ?? 'bench');
  // Peak of each memory figure, sampled every 50 ms (where the RSS goes: JS heap, buffers, native), only when asked
  // (BENCH_MEMORY_PEAKS=1): process.memoryUsage() costs ~1 ms a call, 2 % of a 1M-row export's CPU in its profile.
  // The peak RSS the bench reports is the kernel's high-water mark of this process (`peakRssBytes`), which costs nothing.
  const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  const sampler = process.env.BENCH_MEMORY_PEAKS
    ? setInterval(() => {
        const m = process.memoryUsage();
        for (const k of Object.keys(peak) as (keyof typeof peak)[]) peak[k] = Math.max(peak[k], m[k]);
      }, 50)
    : undefined;
  sampler?.unref();
  // CPU of the export alone (from the call to its return), as DuckDB's is measured from its COPY statement;
  // cpuSeconds is the whole process's, start-up (Node, the bundle, the SDK) included.
  // BENCH_HEAP_SAMPLING=<file>: V8's sampling heap profile of the export, every allocation counted (collected ones
  // too: where the garbage comes from), written as a .heapprofile (open in Chrome DevTools).
  const session = process.env.BENCH_HEAP_SAMPLING ? new (await import('node:inspector/promises')).Session() : undefined;
  if (session) {
    session.connect();
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 16384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const outcome = await exportAccount(dest, {
    sourceUrl: wiring.sourceUrl,
    settings: wiring.settings,
    reporter: new LogReporter(createLogger({ level: 'silent' })),
    ledger: await wiring.ledger(),
  });
  const exportCpu = process.cpuUsage(cpu0);
  // BENCH_THREADS=1: CPU seconds per thread of this process so far (Linux /proc), printed before the JSON line: the
  // main thread, V8's own threads (concurrent GC and compilers: "V8Worker"), the compression workers ("WorkerThread").
  if (process.env.BENCH_THREADS) {
    const { readdirSync } = await import('node:fs');
    const threads: string[] = [];
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks
      if (seconds > 0) threads.push(`${name} ${seconds.toFixed(2)} s`);
    }
    console.log(`threads: ${threads.join(' | ')}`);
  }
  if (session) {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    (await import('node:fs')).writeFileSync(process.env.BENCH_HEAP_SAMPLING!, JSON.stringify(profile));
  }
  await wiring.close();
  const seconds = (performance.now() - t0) / 1000;
  if (!outcome.ok) {
    console.error(
      JSON.stringify({
        error: String((outcome as { error: unknown }).error),
        failures: (outcome as { failures: unknown }).failures,
      }),
    );
    process.exit(1);
  }
  const rows = outcome.tables.reduce((n, t) => n + t.rows, 0);
  const bytes = outcome.tables.reduce((n, t) => n + t.bytes, 0);
  const threads = Math.max(1, ...outcome.tables.map((t) => t.threads ?? 1));
  const usage = process.resourceUsage();
  const cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
  const exportCpuSeconds = (exportCpu.user + exportCpu.system) / 1e6;
  clearInterval(sampler);
  console.log(
    JSON.stringify({
      rows,
      bytes,
      seconds,
      cpuSeconds,
      exportCpuSeconds,
      maxRssBytes: peakRssBytes(usage.maxRSS * 1024),
      threads,
      ...(sampler ? { memoryPeaks: peak } : {}),
    }),
  );
}

if (isMainThread) await main();

/**
 * This process's peak resident set: VmHWM from /proc/self/status on Linux. Not getrusage's maxRSS: a child started
 * by fork + exec inherits the parent's peak in it (review of the bench: a child of a 445 MiB parent reported 405 MiB
 * while its own high-water mark was 42 MiB), so the figure read at least the bench parent's memory at launch.
 * maxRSS elsewhere.
 */
function peakRssBytes(fallback: number): number {
  try {
    const hwm = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return hwm ? Number(hwm[1]) * 1024 : fallback;
  } catch {
    return fallback;
  }
}
