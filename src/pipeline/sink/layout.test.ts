import { describe, expect, it } from 'vitest';
import { folderName, receiptKey, shardKey, tableObjectName } from './layout.js';

describe('object layout', () => {
  const start = new Date('2023-01-02T15:04:59.999Z');

  it('follows the model: <prefix>/<YYYY-MM-DDTHH:MM>/<table>/<table>_<12 digits>.parquet.gz', () => {
    expect(folderName(start)).toBe('2023-01-02T15:04');
    expect(shardKey({ prefix: 'dump', layout: 'dreamdata' }, folderName(start), 'events', 1)).toBe(
      'dump/2023-01-02T15:04/events/events_000000000001.parquet.gz',
    );
    expect(shardKey({ prefix: '', layout: 'dreamdata' }, folderName(start), 'events', 0)).toBe(
      '2023-01-02T15:04/events/events_000000000000.parquet.gz',
    );
    expect(receiptKey({ prefix: '' })).toBe('receipt.json');
    expect(receiptKey({ prefix: 'a/b' })).toBe('a/b/receipt.json');
  });

  it('has a portable variant without colons and with a .parquet extension', () => {
    expect(folderName(start, 'portable')).toBe('20230102T1504Z');
    expect(shardKey({ prefix: 'x', layout: 'portable' }, folderName(start, 'portable'), 'events', 12)).toBe(
      'x/20230102T1504Z/events/events_000000000012.parquet',
    );
  });

  it('derives deterministic, distinct object names for tables with unsafe names', () => {
    expect(tableObjectName('paid_ads')).toBe('paid_ads');
    const a = tableObjectName('My Table');
    const b = tableObjectName('My_Table ');
    expect(a).toMatch(/^My_Table-[0-9a-f]{8}$/);
    expect(tableObjectName('My Table')).toBe(a);
    expect(a).not.toBe(b);
    expect(tableObjectName('../etc')).not.toContain('/');
    expect(tableObjectName('ünï/côdé')).toMatch(/^[A-Za-z0-9_.-]+$/);
  });

  it('keeps .parquet.gz for GZIP in the dreamdata layout; every other codec writes .parquet', () => {
    const start = new Date('2023-01-02T15:04:05Z');
    const dest = (
      compression: 'gzip' | 'zstd' | 'snappy' | 'none',
      layout: 'dreamdata' | 'portable' = 'dreamdata',
    ) => ({
      prefix: 'p',
      layout,
      compression,
    });
    expect(shardKey(dest('gzip'), folderName(start), 'events', 3)).toBe(
      'p/2023-01-02T15:04/events/events_000000000003.parquet.gz',
    );
    for (const c of ['zstd', 'snappy', 'none'] as const) {
      expect(shardKey(dest(c), folderName(start), 'events', 3)).toBe(
        'p/2023-01-02T15:04/events/events_000000000003.parquet',
      );
      expect(shardKey(dest(c, 'portable'), folderName(start, 'portable'), 'events', 3)).toBe(
        'p/20230102T1504Z/events/events_000000000003.parquet',
      );
    }
  });
});
