import type { z } from 'zod';
import {
  accountPath,
  checkResult,
  createDestinationBody,
  createdDestination,
  destinationList,
  destinationView,
  kitQuery,
  listDestinationsQuery,
  listRunsQuery,
  problem,
  runDetail,
  runList,
  runPath,
  runView,
  setupKitView,
  startedRun,
  updateDestinationBody,
  updatedDestination,
} from './schemas.js';

/**
 * The API's operations as data: method, path, parameters, body and answers. The router
 * (./router.ts) validates requests with these schemas and the OpenAPI document (./openapi.ts) is
 * written from them, so neither can list a route, a status or a field the other does not.
 */
export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** A named schema of the document's components: zod (input or output side) or the status.json contract. */
export type ComponentName =
  | 'CreateDestination'
  | 'UpdateDestination'
  | 'Destination'
  | 'CreatedDestination'
  | 'UpdatedDestination'
  | 'DestinationList'
  | 'CheckResult'
  | 'SetupKit'
  | 'DestinationStatus'
  | 'Run'
  | 'RunDetail'
  | 'RunList'
  | 'StartedRun'
  | 'Problem'
  | 'GatewayError';

export const COMPONENTS: Record<
  Exclude<ComponentName, 'DestinationStatus' | 'GatewayError'>,
  { schema: z.ZodType; io: 'input' | 'output' }
> = {
  CreateDestination: { schema: createDestinationBody, io: 'input' },
  UpdateDestination: { schema: updateDestinationBody, io: 'input' },
  Destination: { schema: destinationView, io: 'output' },
  CreatedDestination: { schema: createdDestination, io: 'output' },
  UpdatedDestination: { schema: updatedDestination, io: 'output' },
  DestinationList: { schema: destinationList, io: 'output' },
  CheckResult: { schema: checkResult, io: 'output' },
  SetupKit: { schema: setupKitView, io: 'output' },
  Run: { schema: runView, io: 'output' },
  RunDetail: { schema: runDetail, io: 'output' },
  RunList: { schema: runList, io: 'output' },
  StartedRun: { schema: startedRun, io: 'output' },
  Problem: { schema: problem, io: 'output' },
};

export interface Answer {
  description: string;
  /** The body's schema; absent: no body (204). */
  schema?: ComponentName;
}

export type OperationId =
  | 'createDestination'
  | 'listDestinations'
  | 'getDestination'
  | 'updateDestination'
  | 'deleteDestination'
  | 'checkDestination'
  | 'getDestinationStatus'
  | 'getSetupKit'
  | 'startRun'
  | 'listRuns'
  | 'getRun'
  | 'cancelRun';

export interface Route {
  operationId: OperationId;
  method: Method;
  /** OpenAPI path template, e.g. /destinations/{accountId}. */
  path: string;
  summary: string;
  description: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: { name: ComponentName; schema: z.ZodType };
  /** Takes an Idempotency-Key header (the POSTs that create things). */
  idempotent?: boolean;
  /** Changes something: logged as an audit line with the caller's principal. */
  mutation: boolean;
  responses: Record<number, Answer>;
}

const problemAnswer = (description: string): Answer => ({ description, schema: 'Problem' });
const invalid = problemAnswer('Invalid input: `errors` names each field (an unknown field is named too)');
const noDestination = problemAnswer('No destination is registered for the account');
const busy = problemAnswer(
  'The account is busy — a receipt is being published, or another change of it is being written (waited 20 s): nothing was changed, try again',
);
const unsupported = problemAnswer('The body is not sent as application/json');
const tooLarge: Answer = {
  description: 'Refused by API Gateway: the body is larger than 10 MB (its payload limit); it never reaches dropship',
  schema: 'GatewayError',
};
const common = {
  400: invalid,
  403: {
    description:
      'Refused by AWS IAM: the call is unsigned, wrongly signed, outside the SigV4 time window, or the caller may not execute-api:Invoke it',
    schema: 'GatewayError',
  },
  500: problemAnswer(
    'A failure on dropship’s side, not of the request: `detail` says so (in the words status.json uses when it has them), never an internal detail',
  ),
} satisfies Record<number, Answer>;

export const ROUTES: Route[] = [
  {
    operationId: 'createDestination',
    method: 'POST',
    path: '/destinations',
    summary: 'Register a destination',
    description:
      'Registers a destination (the fields of `dropship destinations add`), generates its external ID and returns it; with `webhookUrl`, also sets the webhook and returns its signing secret this once.',
    body: { name: 'CreateDestination', schema: createDestinationBody },
    idempotent: true,
    mutation: true,
    responses: {
      201: { description: 'Registered', schema: 'CreatedDestination' },
      413: tooLarge,
      415: unsupported,
      409: problemAnswer(
        'The account already has a destination; a request with the same Idempotency-Key is still being answered; or the destination that Idempotency-Key registered was removed or its delivery changed since (`idempotency-key-outdated`: its answer is not replayed)',
      ),
      422: problemAnswer('The Idempotency-Key was used with a different request'),
      ...common,
    },
  },
  {
    operationId: 'listDestinations',
    method: 'GET',
    path: '/destinations',
    summary: 'List destinations',
    description: 'Destinations in account order, a page at a time: pass `nextCursor` as `cursor` for the next page.',
    query: listDestinationsQuery,
    mutation: false,
    responses: { 200: { description: 'A page of destinations', schema: 'DestinationList' }, ...common },
  },
  {
    operationId: 'getDestination',
    method: 'GET',
    path: '/destinations/{accountId}',
    summary: 'Read a destination',
    description: 'The destination with its external ID and webhook address (never the webhook secret).',
    params: accountPath,
    mutation: false,
    responses: { 200: { description: 'The destination', schema: 'Destination' }, 404: noDestination, ...common },
  },
  {
    operationId: 'updateDestination',
    method: 'PATCH',
    path: '/destinations/{accountId}',
    summary: 'Change a destination',
    description:
      'Changes any mutable field (as `dropship destinations update`); null clears `kmsKeyArn`, the tenant fields or the webhook. The external ID never changes. A change of where or how data is delivered cancels an open run.',
    params: accountPath,
    body: { name: 'UpdateDestination', schema: updateDestinationBody },
    mutation: true,
    responses: {
      200: { description: 'Changed', schema: 'UpdatedDestination' },
      413: tooLarge,
      415: unsupported,
      404: noDestination,
      409: problemAnswer(
        'The account is busy (waited 20 s: nothing was changed, try again), or it was removed while the change was being made and maybe registered again (`destination-replaced`: nothing was set on the new registration)',
      ),
      ...common,
    },
  },
  {
    operationId: 'deleteDestination',
    method: 'DELETE',
    path: '/destinations/{accountId}',
    summary: 'Remove a destination',
    description:
      'Removes it for good (as `dropship destinations remove`): its external ID is gone, an open run is cancelled, delivered data stays.',
    params: accountPath,
    mutation: true,
    responses: { 204: { description: 'Removed' }, 404: noDestination, 409: busy, ...common },
  },
  {
    operationId: 'checkDestination',
    method: 'POST',
    path: '/destinations/{accountId}/check',
    summary: 'Check a destination (doctor and drift)',
    description:
      'Runs the doctor (`dropship doctor`: role, external-ID enforcement, bucket, writes, multipart with KMS, lifecycle, selection) and the drift check (`dropship destinations check`: a failure is told to the customer), and returns the findings.',
    params: accountPath,
    mutation: true,
    responses: {
      200: { description: 'The findings (ok false when a check failed)', schema: 'CheckResult' },
      404: noDestination,
      ...common,
    },
  },
  {
    operationId: 'getDestinationStatus',
    method: 'GET',
    path: '/destinations/{accountId}/status',
    summary: 'Read a destination’s delivery status',
    description:
      'The same facts as the status.json dropship writes into the customer’s prefix (schemas/status.schema.json), as of now.',
    params: accountPath,
    mutation: false,
    responses: { 200: { description: 'The status', schema: 'DestinationStatus' }, 404: noDestination, ...common },
  },
  {
    operationId: 'getSetupKit',
    method: 'GET',
    path: '/destinations/{accountId}/kit',
    summary: 'Get the customer’s setup kit',
    description:
      'What the customer deploys in their AWS account (as `dropship destinations kit`): a CloudFormation template with its quick-create link (when dropship hosts templates), a Terraform module, or the raw documents — the same IAM documents `dropship policy` prints.',
    params: accountPath,
    query: kitQuery,
    mutation: false,
    responses: {
      200: { description: 'The kit', schema: 'SetupKit' },
      404: noDestination,
      ...common,
      500: problemAnswer(
        'A failure on dropship’s side, not of the request (never an internal detail); or the kit cannot be made because DROPSHIP_PRINCIPAL_ARN is not configured',
      ),
    },
  },
  {
    operationId: 'startRun',
    method: 'POST',
    path: '/destinations/{accountId}/runs',
    summary: 'Start an on-demand run',
    description:
      'Opens a run on the schedule’s own path (as the exportAccount function and `dropship export` do) and answers at once; workers export its tasks. Watch it with GET /runs/{runId}. A run its pre-flight refuses is opened and failed at once (its `error` says why); when AWS cannot answer the role check (STS throttled or unavailable) nothing is opened and the answer is 503 with Retry-After.',
    params: accountPath,
    idempotent: true,
    mutation: true,
    responses: {
      202: { description: 'The run was opened', schema: 'StartedRun' },
      404: noDestination,
      409: problemAnswer(
        'A run of the account is in progress, the account is disabled, or a request with the same Idempotency-Key is still being answered',
      ),
      422: problemAnswer('The Idempotency-Key was used with a different request'),
      503: problemAnswer(
        'AWS could not answer the role check (STS throttled or unavailable): nothing was opened; try again after Retry-After seconds',
      ),
      ...common,
    },
  },
  {
    operationId: 'listRuns',
    method: 'GET',
    path: '/runs',
    summary: 'List runs',
    description: 'Runs, newest first, a page at a time: pass `nextCursor` as `cursor` for the next page.',
    query: listRunsQuery,
    mutation: false,
    responses: { 200: { description: 'A page of runs', schema: 'RunList' }, ...common },
  },
  {
    operationId: 'getRun',
    method: 'GET',
    path: '/runs/{runId}',
    summary: 'Show a run',
    description: 'One run with its tasks (table, status, attempts, rows, bytes, error).',
    params: runPath,
    mutation: false,
    responses: { 200: { description: 'The run', schema: 'RunDetail' }, 404: problemAnswer('No such run'), ...common },
  },
  {
    operationId: 'cancelRun',
    method: 'POST',
    path: '/runs/{runId}/cancel',
    summary: 'Cancel a run',
    description:
      'Cancels a running or finishing run (as `dropship runs cancel`): its owner stops and aborts its uploads, no receipt is written, the customer is told.',
    params: runPath,
    mutation: true,
    responses: {
      200: { description: 'Cancelled', schema: 'Run' },
      404: problemAnswer('No such run'),
      409: problemAnswer('The run has already ended'),
      ...common,
    },
  },
];

/** The route's path as a regular expression with one group per parameter. */
export function pathPattern(path: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const re = new RegExp(
    `^${path.replace(/\{(\w+)\}/g, (_m, n: string) => {
      names.push(n);
      return '([^/]+)';
    })}$`,
  );
  return { re, names };
}
