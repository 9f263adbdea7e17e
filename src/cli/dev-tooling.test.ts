import { describe, expect, it } from 'vitest';
import { DevToolingMissing, loadDevTooling } from './dev-tooling.js';

describe('the door to the local stack', () => {
  it('tells an install without the development tooling how to get it', async () => {
    // Prepare: what Node throws when a devDependency (here s3rver) is not installed.
    const missing = Object.assign(new Error("Cannot find package 's3rver'"), { code: 'ERR_MODULE_NOT_FOUND' });
    // Act
    const loading = loadDevTooling('demo', () => Promise.reject(missing));
    // Assess
    await expect(loading).rejects.toBeInstanceOf(DevToolingMissing);
    await expect(loading).rejects.toThrow(
      /`dropship demo` needs the development tooling.*run `npm ci` \(not `npm ci --omit=dev`\)/,
    );
    await expect(loading).rejects.toHaveProperty('cause', missing);
  });

  it('passes any other failure through unchanged', async () => {
    const broken = new SyntaxError('broken module');
    await expect(loadDevTooling('dev', () => Promise.reject(broken))).rejects.toBe(broken);
  });

  it('loads the local stack of a full install', async () => {
    const tooling = await loadDevTooling('dev');
    expect(typeof tooling.runDev).toBe('function');
    expect(typeof tooling.runDemo).toBe('function');
  });
});
