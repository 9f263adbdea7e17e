import { describe, expect, it } from 'vitest';
import { usableCores } from './split.js';

describe('the cores a table may be read with', () => {
  it("is the machine's off Lambda, and on Lambda the vCPUs its memory size buys (1,769 MB each)", () => {
    expect(usableCores({}, 2)).toBe(2);
    expect(usableCores({}, 1)).toBe(1);
    // Lambda shows two CPUs at every size; 1,769 MB is one vCPU's worth, 3,538 MB two.
    expect(usableCores({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024' }, 2)).toBe(1);
    expect(usableCores({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008' }, 2)).toBe(1);
    expect(usableCores({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3538' }, 2)).toBe(2);
    expect(usableCores({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '10240' }, 6)).toBe(5);
    expect(usableCores({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '10240' }, 2)).toBe(2);
  });
});
