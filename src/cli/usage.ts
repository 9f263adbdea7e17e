import { DropshipError } from '../contracts/errors.js';
import { printableText } from './format.js';
/**
 * What every command file shares for talking to a person: one line out, the examples block every
 * `--help` ends with, and the error for input a person has to fix (main() prints it as one line and
 * exits 2).
 */
export type Out = (s: string) => void;

/** One line (or several) to the terminal; names and values in it show their control characters as escapes. */
export const out: Out = (s) => {
  process.stdout.write(`${printableText(s)}\n`);
};

export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/** A command line that cannot work. Not retryable. (Its name stays `Error`, as it always was.) */
export class UsageError extends DropshipError {
  readonly code: string = 'usage';
  override readonly badInput: boolean = true;
  constructor(message: string) {
    super(message, undefined, { retryable: false });
  }
}
