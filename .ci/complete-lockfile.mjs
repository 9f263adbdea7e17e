#!/usr/bin/env node
// Completes package-lock.json with the optional, platform-specific packages that npm 11 leaves out
// when it installs through a registry mirror (npm/cli#9342): without them `npm ci` on a clean clone
// fails with "Missing: <pkg>@ from lock file". Each missing entry is filled from the registry's
// metadata (`npm view`): version, integrity, os/cpu/libc, engines. No registry URL is written.
// A registry that does not serve a platform's package at all (this workplace's mirror serves only
// the packages of its own platform) gets a bare optional entry: npm ci then skips it like any
// optional package that cannot be installed — but, knowing no os/cpu, npm ci on every platform then
// installs it when it can (seven DuckDB platforms, ~430 MB): a later run fills a bare entry once the
// registry serves its metadata.
// Run after `npm install` whenever dependencies change:  node .ci/complete-lockfile.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const pkgs = lock.packages;
let added = 0;
for (const [loc, entry] of Object.entries(pkgs)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    // Resolution: nested under the parent first, then hoisted to the top.
    const nested = `${loc ? `${loc}/` : ''}node_modules/${name}`;
    const top = `node_modules/${name}`;
    // An entry with its integrity is complete; a bare one (a registry that did not serve the package's metadata the
    // last time) is filled again when it now does, so npm ci knows its os/cpu and skips other platforms' packages.
    if (pkgs[nested]?.integrity || pkgs[top]?.integrity) continue;
    if (pkgs[nested]) continue;
    let m;
    try {
      const meta = JSON.parse(
        execFileSync('npm', ['view', `${name}@${spec}`, '--json'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        }),
      );
      m = Array.isArray(meta) ? meta.at(-1) : meta;
    } catch {
      if (pkgs[top]) continue;
      pkgs[top] = { version: spec, ...(entry.dev ? { dev: true } : {}), optional: true };
      added++;
      continue;
    }
    pkgs[top] = {
      version: m.version,
      integrity: m.dist.integrity,
      ...(m.cpu ? { cpu: m.cpu } : {}),
      ...(entry.dev ? { dev: true } : {}),
      ...(m.engines ? { engines: m.engines } : {}),
      ...(m.libc ? { libc: m.libc } : {}),
      ...(m.license ? { license: m.license } : {}),
      optional: true,
      ...(m.os ? { os: m.os } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b, 'en'))),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: added ${added} optional platform entries`);
