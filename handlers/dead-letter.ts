import { lambdaDeps } from '../src/run/lambda.js';
import { processDeadLetters } from '../src/run/liveness/dead-letter.js';

/**
 * Consumer of the task dead-letter queue: a dead-lettered task fails its run unless it already
 * succeeded (src/run/liveness/dead-letter.ts).
 */
export const handler = async (event: unknown) => processDeadLetters(event, await lambdaDeps());
