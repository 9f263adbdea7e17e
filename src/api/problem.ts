import { z } from 'zod';
import {
  DestinationBusy,
  DestinationExists,
  DestinationNotFound,
  DestinationReplaced,
  InvalidDestination,
} from '../accounts/registry.js';
import { DropshipError, INTERNAL_CUSTOMER_MESSAGE, nearestDropshipError } from '../contracts/errors.js';
import { PreflightError, passingPreflight } from '../run/lifecycle/prepare.js';
import { RunInProgress } from '../store/ledger/ledger.js';

/**
 * Errors as RFC 9457 problem details (`application/problem+json`): a stable `type` per kind, the
 * HTTP status, a `detail` sentence, the `instance` (the request), and `errors` naming each field at
 * fault. An error on dropship's side says only what status.json would tell the customer, or that the request failed
 * on dropship's side (never an internal detail).
 */
export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: FieldError[];
}

/** An answer the API gives on purpose, with its status and the fields at fault. */
export class ApiError extends DropshipError {
  readonly code: string;
  override readonly badInput: boolean = true;
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message, undefined, { retryable: false });
    this.code = code;
    this.name = 'ApiError';
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Seconds a 503's `Retry-After` asks the caller to wait. */
export const RETRY_AFTER_SECONDS = 30;

export const problemType = (code: string): string => `urn:dropship:problem:${code}`;

/** A zod error as field errors: each issue's path; an unknown field is named itself. */
export function fieldErrors(e: z.ZodError, prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const i of e.issues) {
    const at = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    if (i.code === 'unrecognized_keys')
      for (const k of i.keys) out.push({ field: [at, k].filter(Boolean).join('.'), message: 'unknown field' });
    else out.push({ field: at || prefix || 'body', message: i.message });
  }
  return out;
}

/** "field: message" lines of InvalidDestination as field errors. */
function problemsAsFields(problems: string[]): FieldError[] {
  return problems.map((p) => {
    const m = /^([A-Za-z][\w.]*): (.*)$/s.exec(p);
    return m ? { field: m[1]!, message: m[2]! } : { field: 'body', message: p };
  });
}

/** What an error becomes on the wire. */
export function toProblem(e: unknown, instance: string): Problem {
  const base = (status: number, code: string, detail: string, errors?: FieldError[]): Problem => ({
    type: problemType(code),
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    instance,
    ...(errors && errors.length > 0 ? { errors } : {}),
  });
  const d = nearestDropshipError(e);
  if (e instanceof ApiError) return base(e.status, e.code, e.message, e.errors);
  if (e instanceof z.ZodError) return base(400, 'invalid-request', 'The request is not valid', fieldErrors(e));
  if (d instanceof InvalidDestination)
    return base(400, d.code, 'The destination is not valid', problemsAsFields(d.problems));
  if (d instanceof DestinationNotFound)
    return base(404, d.code, d.message, [{ field: 'accountId', message: 'no destination is registered for it' }]);
  if (d instanceof DestinationExists)
    return base(409, d.code, d.message, [{ field: 'accountId', message: 'already has a destination' }]);
  if (d instanceof DestinationReplaced)
    return base(409, d.code, d.message, [
      { field: 'accountId', message: 'removed (and maybe registered again) meanwhile' },
    ]);
  if (d instanceof DestinationBusy)
    return base(409, d.code, d.message, [{ field: 'accountId', message: 'busy: try again in a moment' }]);
  if (d instanceof RunInProgress)
    return base(409, d.code, d.message, [{ field: 'accountId', message: 'a run is in progress' }]);
  // The role check AWS could not answer (STS throttled, unavailable): nothing was opened; the same request later works.
  if (d instanceof PreflightError && passingPreflight(d))
    return base(
      503,
      'aws-unavailable',
      'AWS could not answer the role check (throttled or unavailable): nothing was opened; try again in a moment',
      [{ field: 'accountId', message: 'try again in a moment' }],
    );
  if (d instanceof PreflightError && d.check === 'disabled')
    return base(409, 'destination-disabled', d.message, [{ field: 'accountId', message: 'disabled' }]);
  if (d?.badInput) return base(400, d.code, d.message);
  return base(500, 'internal', internalDetail(e));
}

/**
 * A 500's detail: the error's own customer sentence when it has one, else one for any request — not the export's
 * default ("the export failed on dropship’s side" answered a failed create: red team, API). Never an internal detail.
 */
export const INTERNAL_API_DETAIL =
  'The request failed on dropship’s side, not because of what was sent: try it again in a moment';

function internalDetail(e: unknown): string {
  const own = nearestDropshipError(e)?.customerMessage;
  return own !== undefined && own !== INTERNAL_CUSTOMER_MESSAGE ? own : INTERNAL_API_DETAIL;
}
