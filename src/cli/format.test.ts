import { describe, expect, it } from 'vitest';
import { printable, printableText, renderTable } from './format.js';

describe('terminal output', () => {
  it('shows control characters of names and values as escapes, never as terminal commands', () => {
    expect(printable('t\x1b[2K\r\x1b[1Ainnocent')).toBe('t\\x1b[2K\\x0d\\x1b[1Ainnocent');
    expect(printable('ok\x1b]0;pwned\x07\u009b')).toBe('ok\\x1b]0;pwned\\x07\\x9b');
    expect(printable('Ünïcødé 🚀 plain')).toBe('Ünïcødé 🚀 plain');
    const table = renderTable(['name\x1b[8m'], [['v\x1b[31mRED']]);
    expect(table).not.toMatch(/\x1b/);
    expect(table).toContain('v\\x1b[31mRED');
    expect(printableText('error: table t\x1b[2K:\n  - line\tend')).toBe('error: table t\\x1b[2K:\n  - line\tend');
  });
});
