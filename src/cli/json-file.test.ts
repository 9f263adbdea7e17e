import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonSyntaxErrorOffset } from './json-file.js';

const parses = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

/** JSON text, and the same text with one character inserted, removed or replaced: mostly invalid, sometimes not. */
const damaged = fc
  .tuple(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', 'x', '\n', '\\', '\u0001', '0', '-', ' '))
  .chain(([text, at, ch]) =>
    fc.constantFrom(
      text,
      text.slice(0, at % (text.length + 1)) + ch + text.slice(at % (text.length + 1)),
      text.slice(0, at % (text.length + 1)) + ch + text.slice((at % (text.length + 1)) + 1),
    ),
  );

describe('where JSON text breaks, without quoting it', () => {
  it('is undefined exactly when JSON.parse accepts the text', () => {
    fc.assert(
      fc.property(fc.oneof(damaged, fc.string()), (s) => {
        expect(jsonSyntaxErrorOffset(s) === undefined).toBe(parses(s));
      }),
      { numRuns: 3000 },
    );
  });

  it('is where V8 says, when V8 says where', () => {
    fc.assert(
      fc.property(damaged, (s) => {
        const at = (() => {
          try {
            JSON.parse(s);
          } catch (e) {
            return /at position (\d+)/.exec((e as Error).message)?.[1];
          }
        })();
        if (at !== undefined) expect(jsonSyntaxErrorOffset(s)).toBe(Number(at));
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['', 0],
    ['SECRET=1', 0],
    ['{"a":1,}', 7],
    ['{"a":1', 6],
    ['[1] x', 4],
    ['"a\nb"', 2],
    ['01', 1],
    ['{"a":tru}', 8],
  ])('%j breaks at %i', (text, at) => {
    expect(jsonSyntaxErrorOffset(text)).toBe(at);
  });
});
