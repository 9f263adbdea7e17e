import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The docs hold together (issue 24): README.md stays short — what dropship is, the two commands, the five-minute
 * tour and links — and every relative link in README.md and docs/ points to a file or folder that exists, so a
 * section moved out of the README (or a file moved by a refactor) is never left unreachable. Anchors are not
 * checked: no markdown-heading slugger is among the dependencies.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README_MAX_LINES = 300;

function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return ['README.md', ...docs.sort()];
}

/** Link targets of inline links `[text](target "title")`, outside fenced code blocks and inline code. */
function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

/** The absolute path a relative link of `file` points to; undefined for a URL or an anchor in the same file. */
function linkedPath(file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) return undefined;
  const path = decodeURIComponent(target.split('#')[0]!);
  return path.startsWith('/') ? join(ROOT, path) : join(ROOT, dirname(file), path);
}

/** The relative links of a file that point to nothing: `file: target`. */
function brokenLinks(file: string): string[] {
  return linkTargets(readFileSync(join(ROOT, file), 'utf8'))
    .filter((target) => {
      const path = linkedPath(file, target);
      return path !== undefined && (!path.startsWith(ROOT) || !existsSync(path));
    })
    .map((target) => `${file}: ${target}`);
}

describe('docs', () => {
  it(`README.md stays at most ${README_MAX_LINES} lines`, () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').trimEnd().split('\n').length;
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('README.md keeps its two commands, and CI runs its test command', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Two commands'),
      readme.indexOf('\n## ', readme.indexOf('## Two commands')),
    );
    const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const commands = block
      .trim()
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, ''));
    expect(commands).toEqual(['npm ci && npm start', 'npm test']);
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8').split('\n');
    expect(ci).toContain('npm ci --no-audit --no-fund');
    expect(ci).toContain(commands[1]);
  });

  it('every relative link in README.md and docs/ resolves to an existing file', () => {
    const files = markdownFiles();
    expect(files.length).toBeGreaterThan(10); // the docs for three readers are there
    expect(files.flatMap(brokenLinks)).toEqual([]);
  });

  it('every document under docs/ is reachable from README.md by links', () => {
    const reached = new Set<string>();
    const queue = ['README.md'];
    while (queue.length > 0) {
      const file = queue.shift()!;
      if (reached.has(file)) continue;
      reached.add(file);
      for (const target of linkTargets(readFileSync(join(ROOT, file), 'utf8'))) {
        const path = linkedPath(file, target);
        if (path?.endsWith('.md') && existsSync(path)) queue.push(relative(ROOT, path));
      }
    }
    expect(markdownFiles().filter((f) => !reached.has(f))).toEqual([]);
  });

  it('finds links and skips code (the checker itself)', () => {
    const md = [
      'See [setup](docs/customer/setup.md#what) and [site](https://example.com) and [top](#top).',
      '`[not](a-link.md)` and ``',
      '```sh',
      'echo "[also not](b.md)"',
      '```',
      '[titled](docs/x.md "Title")',
    ].join('\n');
    expect(linkTargets(md)).toEqual(['docs/customer/setup.md#what', 'https://example.com', '#top', 'docs/x.md']);
  });
});
