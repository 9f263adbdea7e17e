import { DuckDBInstance } from '@duckdb/node-api';

/** DuckDB as the independent reader of the Parquet files dropship writes. */
export async function duck(): Promise<{
  all: (sql: string) => Promise<Record<string, unknown>[]>;
  close: () => void;
}> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await instance.connect();
  return {
    all: async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[],
    close: () => {
      conn.closeSync();
      instance.closeSync();
    },
  };
}
