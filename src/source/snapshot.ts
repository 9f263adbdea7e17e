import type { Socket } from 'node:net';
import pg from 'pg';
import { SourceError } from './errors.js';

/**
 * A client whose connection-level errors (a terminated backend, a dropped socket) never crash the
 * process as an unhandled 'error' event: they surface through the query or COPY stream in flight.
 */
export function sourceClient(connectionString: string, applicationName: string): pg.Client {
  const client = new pg.Client({ connectionString, application_name: applicationName });
  client.on('error', () => {});
  return client;
}

/**
 * One consistent view of the source for a whole run: a REPEATABLE READ, READ ONLY transaction
 * exports its snapshot (pg_export_snapshot()), and every connection that reads a table imports it
 * (SET TRANSACTION SNAPSHOT), so all tables of a run are read as of the same instant.
 * The exporting transaction stays open (idle) until the run ends.
 */
export class Snapshot {
  private constructor(
    private readonly url: string,
    readonly holder: pg.Client,
    readonly id: string,
  ) {}

  static async open(url: string, applicationName = 'dropship'): Promise<Snapshot> {
    const holder = sourceClient(url, applicationName);
    try {
      await holder.connect();
      // The holder sits idle in its transaction for the whole run: never let a server-side
      // idle timeout invalidate the snapshot under the readers.
      await holder.query('set idle_in_transaction_session_timeout = 0');
      await holder.query('begin isolation level repeatable read, read only');
      const res = await holder.query<{ id: string }>('select pg_export_snapshot() as id');
      return new Snapshot(url, holder, res.rows[0]!.id);
    } catch (e) {
      await holder.end().catch(() => {});
      throw new SourceError(`cannot open a snapshot on the source database: ${(e as Error).message}`, { cause: e });
    }
  }

  /** A new connection reading in this snapshot. Close it with `release()`. */
  async connect(applicationName = 'dropship'): Promise<pg.Client> {
    const client = sourceClient(this.url, applicationName);
    try {
      await client.connect();
      // Values exported in their text form must not depend on server or role defaults.
      await client.query(TEXT_FORM_SETTINGS);
      await client.query('begin isolation level repeatable read, read only');
      await client.query(`set transaction snapshot '${this.id.replace(/'/g, "''")}'`);
      return client;
    } catch (e) {
      await client.end().catch(() => {});
      throw new SourceError(`cannot join the run's snapshot: ${(e as Error).message}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    await this.holder.query('rollback').catch(() => {});
    await this.holder.end().catch(() => {});
  }
}

/**
 * Session settings that fix the text form of values (docs/type-mapping.md): ISO dates, ISO 8601
 * intervals, UTC for timetz/timestamptz text, shortest exact floats, hex bytea, C-locale money.
 */
export const TEXT_FORM_SETTINGS = `set datestyle = 'ISO, YMD'; set intervalstyle = 'iso_8601'; set timezone = 'UTC';
  set extra_float_digits = 1; set bytea_output = 'hex'; set lc_monetary = 'C'`;

/** Ends a client; if it is stuck mid-COPY, drops the socket (the server then ends the backend). */
export async function release(client: pg.Client, broken: boolean): Promise<void> {
  if (broken) {
    (client as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
    await client.end().catch(() => {});
    return;
  }
  await client.query('rollback').catch(() => {});
  await client.end().catch(() => {});
}
