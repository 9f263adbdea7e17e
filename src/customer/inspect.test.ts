import { describe, expect, it } from 'vitest';
import { loadSettings } from '../config/settings.js';
import { readerS3 } from './inspect.js';

describe('the reader’s S3 client (dropship inspect)', () => {
  it.each([
    ['1', true],
    ['true', true],
    ['0', false],
  ])('DROPSHIP_S3_FORCE_PATH_STYLE=%s sets path-style addressing to %s', (value, expected) => {
    const s3 = readerS3('eu-west-1', loadSettings({ DROPSHIP_S3_FORCE_PATH_STYLE: value }));
    try {
      expect(s3.config.forcePathStyle).toBe(expected);
    } finally {
      s3.destroy();
    }
  });
});
