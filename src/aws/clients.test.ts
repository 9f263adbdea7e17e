import { describe, expect, it } from 'vitest';
import { loadSettings } from '../config/settings.js';
import { s3SettingsConfig, stsClientConfig } from './clients.js';

describe('AWS client options come from the parsed settings', () => {
  it.each([
    ['1', { forcePathStyle: true }],
    ['true', { forcePathStyle: true }],
    ['0', {}],
    ['false', {}],
  ])('DROPSHIP_S3_FORCE_PATH_STYLE=%s reaches the S3 clients (doctor, load) as %o', (value, expected) => {
    expect(s3SettingsConfig(loadSettings({ DROPSHIP_S3_FORCE_PATH_STYLE: value }))).toEqual(expected);
  });

  it('path-style addressing is off by default', () => {
    expect(s3SettingsConfig(loadSettings({}))).toEqual({});
  });

  it('every STS client (the external-ID guard, the doctor) makes DROPSHIP_AWS_MAX_ATTEMPTS attempts', () => {
    expect(stsClientConfig('eu-west-1', loadSettings({ DROPSHIP_AWS_MAX_ATTEMPTS: '7' })).maxAttempts).toBe(7);
    expect(stsClientConfig('eu-west-1', loadSettings({})).maxAttempts).toBe(5);
  });
});
