import type { App } from './app.js';
import { UsageError } from './usage.js';

/**
 * The App lifecycle of every command that needs settings or the registry database: one App for
 * the command, closed when the command ends, whether it succeeded or threw. The App (and with it
 * pg, the AWS SDK clients and the rest of the wiring) is loaded here, when a command runs: the
 * command files import only this module, so `dropship --help` loads none of it.
 */
export async function withApp<T>(fn: (app: App) => Promise<T>): Promise<T> {
  const { App } = await import('./app.js');
  const app = new App();
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/** The principal the trust policy names; the commands that print or create it need it set. */
export function requirePrincipal(app: App): string {
  const p = app.settings.DROPSHIP_PRINCIPAL_ARN;
  if (!p)
    throw new UsageError(
      'DROPSHIP_PRINCIPAL_ARN is not set: it is the principal the trust policy names (the Lambda role in production)',
    );
  return p;
}
