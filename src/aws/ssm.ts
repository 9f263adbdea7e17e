import { ConfigError } from '../config/settings.js';

/**
 * A SecureString from SSM Parameter Store (decrypted), for secrets that never sit in a function's
 * configuration: the registry's database URL, the webhook-secret key. `check` validates the value
 * and returns what the caller keeps; any failure is a ConfigError that names the parameter (never
 * its value).
 */
export async function secureParameter<T>(
  name: string,
  check: (value: string) => T | undefined,
  expected: string,
  opts: { maxAttempts?: number } = {},
): Promise<T> {
  const { SSMClient, GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const ssm = new SSMClient(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {});
  try {
    const res = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    const out = res.Parameter?.Value === undefined ? undefined : check(res.Parameter.Value);
    if (out === undefined) throw new ConfigError(`SSM parameter ${name} does not hold ${expected}`);
    return out;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot read SSM parameter ${name}: ${(e as Error).name}: ${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    ssm.destroy();
  }
}
