import type { Socket } from 'node:net';
import pg from 'pg';
import type { ReadSnapshot } from '../../contracts/receipt.js';
import { quoteIdent, quoteLiteral } from '../../contracts/sql.js';
import { SourceError } from './errors.js';

/**
 * Session limits for every source connection, so a killed or frozen exporter never holds a
 * snapshot (and blocks vacuum) for hours: an idle-in-transaction timeout, a statement timeout and
 * TCP keepalives on both ends. A limit set to 0 keeps whatever the server, role or URL configured;
 * a limit already configured there (non-zero) is kept too.
 */
export interface SourceSession {
  idleInTransactionSeconds: number;
  statementTimeoutSeconds: number;
  keepAliveSeconds: number;
}

export function sourceSession(settings: {
  DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: number;
  DROPSHIP_SOURCE_STATEMENT_TIMEOUT_SECONDS: number;
  DROPSHIP_SOURCE_KEEPALIVE_SECONDS: number;
}): SourceSession {
  return {
    idleInTransactionSeconds: settings.DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS,
    statementTimeoutSeconds: settings.DROPSHIP_SOURCE_STATEMENT_TIMEOUT_SECONDS,
    keepAliveSeconds: settings.DROPSHIP_SOURCE_KEEPALIVE_SECONDS,
  };
}

const SESSION_SQL = `select
   set_config('statement_timeout',
     case when $1::int > 0 and current_setting('statement_timeout') = '0' then ($1::int * 1000)::text
          else current_setting('statement_timeout') end, false),
   set_config('idle_in_transaction_session_timeout',
     case when $2::int > 0 and current_setting('idle_in_transaction_session_timeout') = '0' then ($2::int * 1000)::text
          else current_setting('idle_in_transaction_session_timeout') end, false),
   set_config('tcp_keepalives_idle', $3::text, false),
   set_config('tcp_keepalives_interval', greatest(1, $3::int / 3)::text, false),
   set_config('tcp_keepalives_count', '3', false),
   -- As pg_dump: a table whose row-level security would hide rows from this role is an error, never a silent subset.
   set_config('row_security', 'off', false)`;

/**
 * A client whose connection-level errors (a terminated backend, a dropped socket) never crash the
 * process as an unhandled 'error' event: they surface through the query or COPY stream in flight.
 */
export function sourceClient(connectionString: string, applicationName: string, session?: SourceSession): pg.Client {
  const client = new pg.Client({
    connectionString,
    application_name: applicationName,
    ...(session ? { keepAlive: true, keepAliveInitialDelayMillis: session.keepAliveSeconds * 1000 } : {}),
  });
  client.on('error', () => {});
  return client;
}

/** Connects a source client and applies its session limits. */
export async function connectSource(client: pg.Client, session?: SourceSession): Promise<void> {
  await client.connect();
  if (session)
    await client.query(SESSION_SQL, [
      session.statementTimeoutSeconds,
      session.idleInTransactionSeconds,
      session.keepAliveSeconds,
    ]);
}

/**
 * What identifies the moment a table was read: the source's transaction snapshot
 * (`txid_current_snapshot()` text, `xmin:xmax:xip…` — identical in every transaction that imported
 * the same exported snapshot) and when it was taken (UTC, microseconds).
 */
const SNAPSHOT_INFO_SQL = `select txid_current_snapshot()::text as id,
  to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at`;

/** The snapshot of the transaction open on `client` (its first statement takes it, in REPEATABLE READ). */
export async function snapshotInfo(client: pg.Client): Promise<ReadSnapshot> {
  const res = await client.query<ReadSnapshot>(SNAPSHOT_INFO_SQL);
  return { id: res.rows[0]!.id, at: res.rows[0]!.at };
}

/**
 * A new connection whose REPEATABLE READ, READ ONLY transaction imports the exported snapshot
 * `exportId` (SET TRANSACTION SNAPSHOT). Fails (SourceError) when the exporting transaction has
 * ended: an exported snapshot can only be imported while it is open.
 */
export async function joinSnapshot(
  url: string,
  exportId: string,
  applicationName = 'dropship',
  session?: SourceSession,
): Promise<pg.Client> {
  return joinWith(sourceClient(url, applicationName, session), exportId, session);
}

/** `joinSnapshot` on a client the caller made (and can end while it is still joining). */
async function joinWith(client: pg.Client, exportId: string, session?: SourceSession): Promise<pg.Client> {
  try {
    await connectSource(client, session);
    // Values exported in their text form must not depend on server or role defaults.
    await client.query(TEXT_FORM_SETTINGS);
    await client.query('begin isolation level repeatable read, read only');
    await client.query(`set transaction snapshot ${quoteLiteral(exportId)}`);
    return client;
  } catch (e) {
    await client.end().catch(() => {});
    throw new SourceError(`cannot join the run's snapshot: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * One consistent view of the source for a whole run: a REPEATABLE READ, READ ONLY transaction
 * exports its snapshot (pg_export_snapshot()), and every connection that reads a table imports it
 * (SET TRANSACTION SNAPSHOT), so all tables of a run are read as of the same instant.
 * The exporting transaction stays open (idle) until the run ends.
 *
 * Connections are opened ahead where a run would otherwise wait for them (each costs a server
 * process, authentication and the session's settings: ~20–30 ms on the local stack, a TLS handshake
 * more on RDS): the holder's while the run checks the customer's role (`Snapshot.connectHolder`, then
 * `open` — nothing is read and no snapshot taken before `open`), the first readers' while the run
 * opens in the ledger (`prejoin`).
 */
export class Snapshot {
  /** Readers joined ahead (`prejoin`), handed out by `connect` first; ended by `unjoin`/`close` when unused. */
  private joined: { client: pg.Client; reader: Promise<ReaderClient>; ready: boolean }[] = [];

  private constructor(
    private readonly url: string,
    readonly holder: pg.Client,
    readonly id: string,
    private readonly session: SourceSession | undefined,
    /** The moment this snapshot shows (what receipts call `snapshot`). */
    readonly info: ReadSnapshot,
  ) {}

  /**
   * The holder sits idle in its transaction while the readers work: its owner pings it (see
   * `ping`) more often than the idle-in-transaction timeout, so the timeout only ends the holder
   * of an owner that died or froze.
   */
  static async open(url: string, applicationName = 'dropship', session?: SourceSession): Promise<Snapshot> {
    return Snapshot.connectHolder(url, applicationName, session).open();
  }

  /**
   * The holder's connection, opened now (connected, session limits set, no transaction): the
   * snapshot is taken by `open()`. `close()` ends a holder that was never opened (a run refused by
   * its pre-flight); once opened, the Snapshot's own `close` ends it.
   */
  static connectHolder(url: string, applicationName = 'dropship', session?: SourceSession): PendingSnapshot {
    let holder = sourceClient(url, applicationName, session);
    const early = watch(holder);
    let connectedOk = false;
    const connected = connectSource(holder, session).then(() => {
      connectedOk = true;
    });
    connected.catch(() => {}); // a connection that failed is made again by open(); a holder never opened is only closed
    let used = false;
    return {
      open: async () => {
        used = true;
        // Connected ahead, while the role was checked: if that connection failed or was lost since (a restart, a
        // proxy's idle limit), it is made again, once, as open() made it before there was a head start.
        const ready = await connected.then(
          () => !early.lost,
          () => false,
        );
        const fresh = async (): Promise<void> => {
          await holder.end().catch(() => {});
          holder = sourceClient(url, applicationName, session);
          await connectSource(holder, session);
        };
        try {
          if (!ready) await fresh();
          try {
            await holder.query('begin isolation level repeatable read, read only');
          } catch (e) {
            // Lost while it waited, before this process noticed (the server ended it; its socket's close not read yet):
            // the first statement fails; a connection made ahead gets one new connection, as a lost one noticed does.
            if (!ready) throw e;
            await fresh();
            await holder.query('begin isolation level repeatable read, read only');
          }
          const info = await snapshotInfo(holder);
          const res = await holder.query<{ id: string }>('select pg_export_snapshot() as id');
          return new Snapshot(url, holder, res.rows[0]!.id, session, info);
        } catch (e) {
          await holder.end().catch(() => {});
          throw new SourceError(`cannot open a snapshot on the source database: ${(e as Error).message}`, {
            cause: e,
          });
        }
      },
      close: async () => {
        if (used) return;
        used = true;
        // Not waiting for the connection: one still connecting (a source that does not answer) is dropped at once.
        if (connectedOk) await holder.end().catch(() => {});
        else await release(holder, true);
      },
    };
  }

  /**
   * Joins `count` readers now, side by side, for the first `connect` calls (the run's first tables):
   * their connections open while the run is recorded instead of after. A reader that failed to join
   * or lost its connection while it waited is replaced by a new one when it is asked for.
   */
  prejoin(count: number, applicationName = 'dropship'): void {
    for (let i = 0; i < count; i++) {
      const client = sourceClient(this.url, applicationName, this.session);
      const entry = { client, reader: joinWith(client, this.id, this.session).then(watch), ready: false };
      entry.reader.then(
        () => {
          entry.ready = true;
        },
        () => {},
      );
      this.joined.push(entry);
    }
  }

  /**
   * Ends the readers joined ahead and not handed out (a run that must wait for another one first gives them
   * back rather than hold them idle): a reader still joining is dropped, not waited for.
   */
  async unjoin(): Promise<void> {
    const unused = this.joined;
    this.joined = [];
    await Promise.all(
      unused.map(({ client, ready }) => (ready ? client.end().catch(() => {}) : release(client, true))),
    );
  }

  /**
   * A new connection reading in this snapshot (one joined ahead first, if it still answers: one
   * round trip). Close it with `release()`.
   */
  async connect(applicationName = 'dropship'): Promise<pg.Client> {
    const ahead = this.joined.shift();
    if (ahead) {
      const reader = await ahead.reader.catch(() => undefined);
      if (
        reader &&
        !reader.lost &&
        (await reader.client.query('select 1').then(
          () => true,
          () => false,
        ))
      )
        return reader.client;
      if (reader) await release(reader.client, true);
    }
    return joinSnapshot(this.url, this.id, applicationName, this.session);
  }

  /** Keeps the holder's transaction from counting as idle (called by the run owner's heartbeat). */
  async ping(): Promise<void> {
    await this.holder.query('select 1');
  }

  async close(): Promise<void> {
    await this.unjoin();
    await this.holder.query('rollback').catch(() => {});
    await this.holder.end().catch(() => {});
  }
}

/** A snapshot whose holder is connecting (`Snapshot.connectHolder`): `open` takes the snapshot, `close` gives it up. */
export interface PendingSnapshot {
  open(): Promise<Snapshot>;
  close(): Promise<void>;
}

/** A connection opened ahead (a reader, the holder), and whether it failed or ended while it waited. */
interface ReaderClient {
  client: pg.Client;
  lost: boolean;
}

function watch(client: pg.Client): ReaderClient {
  const reader = { client, lost: false };
  client.once('error', () => {
    reader.lost = true;
  });
  client.once('end', () => {
    reader.lost = true;
  });
  return reader;
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

/**
 * After a table's COPY, in the transaction that read it (its lock still held): whether the table — or, for a
 * partitioned table, one of its leaf partitions — was truncated or rewritten after the transaction's snapshot (TRUNCATE,
 * ALTER TABLE … TYPE, VACUUM FULL, CLUSTER, REFRESH MATERIALIZED VIEW). Those are not MVCC-safe: the COPY read the new,
 * maybe empty, file through the old snapshot and saw none of the rows the snapshot held — a silently empty table
 * (red-team, data pass: a nightly truncate-and-reload during an export delivered 0 rows). pg_class read by the
 * transaction shows the file as of its snapshot; pg_relation_filenode() the one in use now.
 */
export async function rewrittenSinceSnapshot(client: pg.ClientBase, schema: string, table: string): Promise<boolean> {
  const res = await client.query<{ rewritten: boolean }>(
    `with rel as (select ($1::text || '.' || $2::text)::regclass as oid),
          leaves as (select t.relid from rel, pg_partition_tree(rel.oid) t where t.isleaf
                     union select rel.oid from rel)
     select coalesce(bool_or(c.relfilenode <> 0 and c.relfilenode is distinct from pg_relation_filenode(c.oid)), false) as rewritten
       from pg_class c join leaves l on l.relid = c.oid`,
    [quoteIdent(schema), quoteIdent(table)],
  );
  return res.rows[0]?.rewritten ?? false;
}
