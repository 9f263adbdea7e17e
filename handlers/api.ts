import { type HttpApiEvent, handleApiEvent } from '../src/api/router.js';
import { lambdaDeps } from '../src/run/lambda.js';

/**
 * The HTTP API (API Gateway HTTP API, payload format 2.0, `authorizer: aws_iam`): AWS IAM has
 * verified the caller's SigV4 signature and its execute-api:Invoke permission before this runs.
 * The routes are src/api/routes.ts; the contract is schemas/openapi.json.
 */
export const handler = async (event: HttpApiEvent) => {
  const { settings, registry, ledger, queue, log, sourceUrl, faults } = await lambdaDeps();
  return handleApiEvent(event, { settings, pool: ledger.pool, registry, ledger, queue, log, sourceUrl, faults });
};
