#!/usr/bin/env node
/**
 * Draws dropship's real dependency graph — the groups of .dependency-cruiser.cjs and the imports
 * between them, as dependency-cruiser reads them from the code — into the Markdown files that hold
 * the markers below, as a Mermaid flowchart: README.md gets the compact drawing (run/* and
 * pipeline/* folded into one box each), docs/design/architecture.md the whole one.
 *
 *   npm run docs:graph            rewrite the drawings
 *   npm run docs:graph -- --check exit 1 when a drawing differs from the code (test/architecture.test.ts)
 *
 * Edges to the bottom groups (log, config, contracts), which every group may use, are left out.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('../', import.meta.url);
const require = createRequire(import.meta.url);
const { GROUPS } = require('../.dependency-cruiser.cjs').graph;
const BOTTOM = new Set(['log', 'config', 'contracts']);
const TARGETS = [
  { file: 'README.md', fold: true },
  { file: 'docs/design/architecture.md', fold: false },
];

function cruise() {
  let out;
  try {
    out = execFileSync(
      new URL('node_modules/.bin/depcruise', root).pathname,
      ['src', 'handlers', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
      { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
    );
  } catch (e) {
    out = e.stdout; // violations make depcruise exit non-zero; its JSON is still whole
  }
  return JSON.parse(out);
}

const groupOf = (path) => Object.keys(GROUPS).find((g) => new RegExp(GROUPS[g]).test(path));
const folded = (g) => (g.startsWith('run/') ? 'run' : g.startsWith('pipeline/') ? 'pipeline' : g);

export function drawing(result, fold) {
  const edges = new Map(); // "a b" → dynamic only?
  const nodes = new Set();
  for (const m of result.modules) {
    if (m.source.endsWith('.test.ts')) continue;
    let from = groupOf(m.source);
    if (!from) continue;
    if (fold) from = folded(from);
    nodes.add(from);
    for (const d of m.dependencies) {
      let to = groupOf(d.resolved);
      if (!to) continue;
      if (fold) to = folded(to);
      if (to === from || BOTTOM.has(to)) continue;
      const key = `${from} ${to}`;
      edges.set(key, (edges.get(key) ?? true) && d.dynamic === true);
    }
  }
  const id = (g) => g.replace('/', '_');
  const lines = ['```mermaid', 'flowchart TD'];
  for (const n of [...nodes].filter((n) => !BOTTOM.has(n)).sort()) lines.push(`  ${id(n)}[${n}]`);
  for (const [key, dynamicOnly] of [...edges].sort(([a], [b]) => a.localeCompare(b))) {
    const [a, b] = key.split(' ');
    lines.push(`  ${id(a)} ${dynamicOnly ? '-.->' : '-->'} ${id(b)}`);
  }
  lines.push('```');
  return lines.join('\n');
}

const START = '<!-- dependency-graph:start (npm run docs:graph) -->';
const END = '<!-- dependency-graph:end -->';

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  const result = cruise();
  const stale = [];
  for (const { file, fold } of TARGETS) {
    const path = new URL(file, root);
    const text = readFileSync(path, 'utf8');
    const a = text.indexOf(START);
    const b = text.indexOf(END);
    if (a < 0 || b < a) {
      stale.push(`${file}: no "${START}" … "${END}" markers`);
      continue;
    }
    const next = `${text.slice(0, a + START.length)}\n${drawing(result, fold)}\n${text.slice(b)}`;
    if (next === text) continue;
    if (check) stale.push(`${file}: the dependency drawing differs from the code — run \`npm run docs:graph\``);
    else writeFileSync(path, next);
  }
  if (stale.length) {
    console.error(stale.join('\n'));
    process.exit(1);
  }
}
