import { setFlagsFromString } from 'node:v8';

/**
 * How V8 decides to collect the whole heap, set for an exporter: buffers count by what they hold, and the heap may
 * grow by half of what is live before the next full collection.
 *
 * 1. `--external-memory-accounted-in-global-limit` (V8 below 14.8, where it is the default and the flag is gone).
 *    Without it V8 adds every byte allocated in an ArrayBuffer since the last mark-compact, dead or alive, to the old
 *    generation's size when it decides whether to start the next one (heap.h `OldGenerationSpaceAvailable`: `bytes +=
 *    AllocatedExternalMemorySinceMarkCompact()`, "historic behavior" in its comment; chromium:42203776). An export's
 *    heap stays at 15–20 MB while buffers stream through it — the COPY stream alone is ~190 bytes a row read from the
 *    socket — so V8 marked and compacted the whole heap for every ~12 MB of buffers: ~30 times per 2M-row export,
 *    ~1 CPU-s of ~3.6 (`--trace-incremental-marking`: each started on "allocation limit" with the old generation at
 *    15 of a 27 MB limit). With it, what buffers hold counts inside V8's global limit instead.
 * 2. `--heap-growing-percent=50`: the next limit is 1.5 × what is live (V8 picks 1.1–4× from its own GC speed). With
 *    buffers counted by what they hold, that factor also multiplies the live buffers: a 1,000-column ZSTD table held
 *    512 MiB with item 1 alone (dead pages and zstd contexts waiting for a collection), 332 MiB with both (345 before).
 *    V8 applies it in place of its own factor in every mode, the slower growth it picks under memory pressure (≤ 1.3×)
 *    included, and in every function the wiring serves (API, schedule, sweeper: small heaps, not measured apart).
 *
 * Measured (docs/operations/capacity.md, "Issue 27, sixth pass"; `test/bench/ab.ts`, 2M rows, 3 rounds, against main
 * with neither): CPU µs/row none 1.94 → 1.61, SNAPPY 2.83 → 2.28, ZSTD 2.77 → 2.46, GZIP 3.52 → 3.19, peak RSS
 * unchanged (157–211 MiB against 160–212), the 1,000-column table faster and smaller (GZIP and ZSTD, two rounds
 * alternating: 2,696–3,672 → 3,675–3,955 rows/s). Lambda also runs with `--max-semi-space-size=1` (serverless.yml): scavenges
 * often enough to free short-lived buffers soon after they die.
 *
 * Both are process-wide (every isolate: compression workers too) and read by V8 at each decision, so they may be set
 * after start-up; NODE_OPTIONS cannot carry V8 flags other than a few. Set once, by the wiring every entry point builds
 * (src/run/wiring.ts). Returns the flags it set.
 */
export function tuneHeapForExports(v8Version: string = process.versions.v8): string[] {
  const flags = heapFlags(v8Version);
  if (!tuned) for (const f of flags) setFlagsFromString(f);
  tuned = true;
  return flags;
}

let tuned = false;

/**
 * The flags for a V8 version: item 1 from V8 13.6 (Node 24, the version measured; older V8s do not know the flag and
 * print "unrecognized flag") up to 14.8, where it is the default; item 2 on every V8.
 */
export function heapFlags(v8Version: string): string[] {
  const m = /^(\d+)\.(\d+)\./.exec(v8Version);
  const v = m ? Number(m[1]) * 100 + Number(m[2]) : 0;
  return [
    ...(v >= 1306 && v < 1408 ? ['--external-memory-accounted-in-global-limit'] : []),
    '--heap-growing-percent=50',
  ];
}
