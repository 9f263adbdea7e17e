import type { Command } from 'commander';
import { examples, out } from '../usage.js';

/**
 * `dropship migrate`: the explicit deploy step that brings dropship's own schema to this release's
 * version (idempotent; run it before deploying the functions — docs/operations/upgrades.md). Every
 * other command and function refuses a schema it cannot run on. `--check` only reports.
 */
export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description("Bring dropship's own schema in DATABASE_URL to this release's version (a deploy step; idempotent)")
    .option('--check', 'only report the schema version and whether this release can run on it (exit 1 if not)')
    .addHelpText(
      'after',
      examples(
        'DATABASE_URL=postgres://dropship@db.internal:5432/dropship dropship migrate',
        'dropship migrate --check',
      ),
    )
    .action(async (o: { check?: boolean }) => {
      const { SCHEMA_VERSION, migrate, schemaProblem, readSchemaState } = await import('../../store/migrations.js');
      const { Pool } = (await import('pg')).default;
      const { App } = await import('../app.js');
      const { connecting } = await import('../database-error.js');
      // Settings as every command reads them; the pool is this command's own (not the App's checked one).
      const url = new App().databaseUrl;
      const pool = new Pool({ connectionString: url, max: 1 });
      pool.on('error', () => {});
      // A login refused or a host not reached is the configuration's: one line, exit 2 (src/cli/database-error.ts).
      await connecting(
        () => url,
        'DATABASE_URL',
        async () => (await pool.connect()).release(),
      ).catch(async (e: unknown) => {
        await pool.end().catch(() => {});
        throw e;
      });
      try {
        if (o.check) {
          const state = await readSchemaState(pool);
          const problem = schemaProblem(state);
          out(`schema version ${state.version}; this release knows ${SCHEMA_VERSION}`);
          // What `dropship migrate` would change: the migrations this release has and the database lacks.
          const { migrationLine } = await import('../migration-notes.js');
          const applied = new Set(state.version === 0 ? [] : await appliedVersions(pool));
          const pending = Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1).filter((v) => !applied.has(v));
          const newer = [...applied].filter((v) => v > SCHEMA_VERSION).sort((a, b) => a - b);
          if (pending.length) {
            out(`${pending.length} migration(s) pending — \`dropship migrate\` would apply, in one transaction:`);
            for (const v of pending) out(migrationLine(v));
          } else out('no migration pending');
          if (newer.length) out(`applied by a newer dropship (unknown to this one): ${newer.join(', ')}`);
          if (problem) {
            out(problem);
            process.exitCode = 1;
          } else out('ok: this release can run on it');
          return;
        }
        const applied = await migrate(pool);
        out(
          applied.length === 0
            ? `schema already at version ${SCHEMA_VERSION}: nothing to do`
            : `schema migrated to version ${SCHEMA_VERSION} (applied ${applied.join(', ')})`,
        );
      } finally {
        await pool.end();
      }
    });
}

/** The versions recorded in dropship.schema_migrations. */
async function appliedVersions(pool: {
  query: (sql: string) => Promise<{ rows: { version: number }[] }>;
}): Promise<number[]> {
  return (await pool.query('select version from dropship.schema_migrations order by version')).rows.map((r) =>
    Number(r.version),
  );
}
