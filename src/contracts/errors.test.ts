import { describe, expect, it } from 'vitest';
import {
  customerMessageOf,
  DropshipError,
  type DropshipErrorOptions,
  errorCodeOf,
  INTERNAL_CUSTOMER_MESSAGE,
  isRetryable,
  nearestDropshipError,
  repeatsOf,
} from './errors.js';

// Two members of the family as stages declare them: one retryable by nature, one final with its own customer sentence.
class FlakyError extends DropshipError {
  readonly code: string = 'flaky';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options);
    this.name = 'FlakyError';
  }
}
class RefusedError extends DropshipError {
  readonly code: string = 'refused';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false, customerMessage: 'your bucket refused the write' });
    this.name = 'RefusedError';
  }
}
/** A wrapper: says nothing of its own, so it answers like its cause. */
class WrapperError extends DropshipError {
  readonly code: string = 'wrapper';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options);
    this.name = 'WrapperError';
  }
}

describe('the error family', () => {
  it('an error states its code, its verdict and both messages; instanceof and name are its own', () => {
    // Prepare
    const detail = 'account 42: PutObject on s3://bucket/key denied for role arn:aws:iam::1:role/r (ext id abc)';

    // Act
    const e = new RefusedError(detail);

    // Assess
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(DropshipError);
    expect(e).toBeInstanceOf(RefusedError);
    expect(e.name).toBe('RefusedError');
    expect(e.code).toBe('refused');
    expect(e.retryable).toBe(false);
    expect(e.message).toBe(detail);
    expect(e.customerMessage).toBe('your bucket refused the write');
    expect(e.customerMessage).not.toContain('abc');
  });

  it('the verdict travels through a cause chain: the nearest DropshipError answers', () => {
    // Prepare
    const refused = new RefusedError('denied');
    const rawAroundRefused = new Error('stream failed', { cause: refused });

    // Act
    const wrapped = new WrapperError('table t: denied', { cause: rawAroundRefused });
    const wrappedFlaky = new WrapperError('table t: reset', { cause: new FlakyError('connection reset') });
    const wrappedTwice = new WrapperError('run failed', { cause: wrapped });

    // Assess
    expect(wrapped.retryable).toBe(false);
    expect(wrappedTwice.retryable).toBe(false);
    expect(wrappedFlaky.retryable).toBe(true);
    expect(isRetryable(rawAroundRefused)).toBe(false);
    expect(nearestDropshipError(rawAroundRefused)).toBe(refused);
    expect(errorCodeOf(rawAroundRefused)).toBe('refused');
    expect(isRetryable(new Error('outer', { cause: new Error('inner', { cause: new FlakyError('x') }) }))).toBe(true);
  });

  it("the class's own verdict wins over its cause's, and the caller's over both", () => {
    // Prepare
    const flaky = new FlakyError('throttled');

    // Act
    const refusedAroundFlaky = new RefusedError('refused after a throttle', { cause: flaky });
    const toldFinal = new WrapperError('given up', { cause: flaky, retryable: false });

    // Assess
    expect(refusedAroundFlaky.retryable).toBe(false);
    expect(toldFinal.retryable).toBe(false);
  });

  it('an error dropship does not know is retryable and is told to customers as our problem', () => {
    // Prepare
    const raw = Object.assign(new Error('connection terminated unexpectedly'), { code: '57P01' });

    // Act
    const verdict = isRetryable(raw);
    const told = customerMessageOf(raw);

    // Assess
    expect(verdict).toBe(true);
    expect(told).toBe(INTERNAL_CUSTOMER_MESSAGE);
    expect(errorCodeOf(raw)).toBe('internal');
    expect(isRetryable(undefined)).toBe(true);
    expect(isRetryable('a string')).toBe(true);
  });

  it('the customer hears the sentence of the error that knows, never the operator detail', () => {
    // Prepare
    const detail = 'table secrets: value 4111-1111-1111-1111 in column card has no exact Parquet form';
    const refused = new RefusedError(detail);

    // Act
    const wrapped = new WrapperError(`run failed: ${detail}`, { cause: refused });
    const plain = new FlakyError(`COPY failed: ${detail}`);

    // Assess
    expect(customerMessageOf(wrapped)).toBe('your bucket refused the write');
    expect(customerMessageOf(plain)).toBe(INTERNAL_CUSTOMER_MESSAGE);
    expect(customerMessageOf(wrapped)).not.toContain('4111');
    expect(wrapped.message).toContain('4111');
  });

  it('repeats (will every later run fail the same way?) is its own verdict, travels through causes, defaults to no', () => {
    class BadDataError extends DropshipError {
      readonly code: string = 'bad-data';
      constructor(message: string, options?: DropshipErrorOptions) {
        super(message, options, { retryable: false, repeats: true });
      }
    }
    expect(new FlakyError('x').repeats).toBe(false);
    // Not retryable is not "repeats": a refused attempt may still succeed on the next run.
    expect(new RefusedError('x').repeats).toBe(false);
    expect(new BadDataError('x').repeats).toBe(true);
    expect(repeatsOf(new WrapperError('w', { cause: new BadDataError('x') }))).toBe(true);
    expect(repeatsOf(new WrapperError('w', { cause: new BadDataError('x'), repeats: false }))).toBe(false);
    expect(repeatsOf(new Error('unknown'))).toBe(false);
  });

  it('keeps the cause as ErrorOptions does (and none when none is given)', () => {
    // Prepare
    const cause = new Error('root');

    // Act
    const withCause = new FlakyError('outer', { cause });
    const without = new FlakyError('alone');

    // Assess
    expect(withCause.cause).toBe(cause);
    expect('cause' in without).toBe(false);
  });

  it('a cause chain that loops ends the walk', () => {
    // Prepare
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;

    // Act
    const verdict = isRetryable(a);

    // Assess
    expect(verdict).toBe(true);
  });
});
