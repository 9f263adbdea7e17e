import type { Pool } from 'pg';
import type { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../log/logger.js';
import type { Ledger } from '../store/ledger/ledger.js';

/**
 * What an operation needs: the same for the CLI (src/cli/app.ts builds it) and the HTTP API
 * (src/api/, built by handlers/api.ts and by `dropship dev`). One function per operation lives in
 * this folder; both callers call it, so there is no second implementation of any operation.
 */
export interface OperationDeps {
  settings: Settings;
  /** The registry/ledger database. */
  pool: Pool;
  registry: Registry;
  ledger: Ledger;
  /** The database customers' data is read from (the doctor's selection check). */
  sourceUrl: string;
  log?: Logger;
}
