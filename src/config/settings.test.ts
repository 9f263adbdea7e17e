import { describe, expect, it } from 'vitest';
import { DEFAULT_SLOTS, slotsByPlan } from '../contracts/slots.js';
import { ConfigError, loadSettings } from './settings.js';

describe('loadSettings', () => {
  it('applies documented defaults', () => {
    const s = loadSettings({});
    expect(s.DROPSHIP_SHARD_TARGET_BYTES).toBe(128 * 1024 * 1024);
    expect(s.DROPSHIP_GZIP_LEVEL).toBe(4);
    expect(s.DROPSHIP_PART_SIZE_BYTES).toBe(5 * 1024 * 1024);
    expect(s.DROPSHIP_S3_FORCE_PATH_STYLE).toBe(false);
  });

  it('rejects typos, bad values and too-small parts with messages a person can act on', () => {
    let err: unknown;
    try {
      loadSettings({
        DROPSHIP_GZIP_LEVL: '9',
        DROPSHIP_PART_SIZE_BYTES: '1000',
        DATABASE_URL: 'mysql://x',
        DROPSHIP_S3_FORCE_PATH_STYLE: 'yes',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('DROPSHIP_GZIP_LEVL is not a dropship setting (did you mean DROPSHIP_GZIP_LEVEL?)');
    expect(msg).toContain('DROPSHIP_PART_SIZE_BYTES: Too small');
    expect(msg).toContain('DATABASE_URL: must be a postgres:// connection URL');
    expect(msg).toContain('DROPSHIP_S3_FORCE_PATH_STYLE');
  });

  it('defaults the slots per plan to the product schedule and refuses a malformed list', () => {
    expect(slotsByPlan(loadSettings({}))).toEqual(DEFAULT_SLOTS);
    expect(slotsByPlan(loadSettings({ DROPSHIP_PAID_SLOTS: '06:30,18:00' })).paid).toEqual(['06:30', '18:00']);
    expect(() => loadSettings({ DROPSHIP_FREE_SLOTS: '4am' })).toThrow(/DROPSHIP_FREE_SLOTS: HH:MM\[,HH:MM…\]/);
  });
});
