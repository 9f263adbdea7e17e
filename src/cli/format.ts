/** Human formatting for the terminal: bytes, counts, rates and aligned tables. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} ${units[u]}` : `${v.toFixed(1)} ${units[u]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatRate(rows: number, seconds: number): string {
  if (seconds <= 0) return '—';
  const r = rows / seconds;
  return r >= 1e6
    ? `${(r / 1e6).toFixed(2)}M rows/s`
    : r >= 1e3
      ? `${(r / 1e3).toFixed(1)}k rows/s`
      : `${r.toFixed(0)} rows/s`;
}

/** Renders rows as an aligned text table; columns listed in `right` are right-aligned. */
/**
 * A cell as a terminal may show it: C0 and C1 control characters (ESC starting a colour, a cursor move, a title) as
 * `\xNN` escapes. Cells hold names and values from receipts and customers' data (red-team: a table named with
 * `\x1b[2K` hid lines of `inspect`'s output).
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** As `printable`, keeping line breaks and tabs: for whole messages and output lines of several lines. */
export function printableText(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

export function renderTable(header: string[], rows: string[][], right: number[] = []): string {
  header = header.map(printable);
  rows = rows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)].join('\n');
}
