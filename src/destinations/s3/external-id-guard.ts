import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import { AwsError, awsErrorCode, DestinationAccessError, roleSessionName, stsClientConfig } from './clients.js';

/**
 * The production external-ID guard: exports go only to roles whose trust policy enforces the
 * external ID. A role that can be assumed without it is a confused-deputy hole — anyone dropship
 * acts for could reach that bucket — so the run path refuses to export there (src/notify/drift.ts
 * decides how often the probe runs; the doctor reports the same probe as a check).
 */

/**
 * AssumeRole into the destination's role as dropship's own identity, with the given external ID
 * (or none); resolves to STS's error code, or 'OK' when the role was assumed.
 */
export async function probeAssumeRole(
  dest: Destination,
  externalId: string | undefined,
  settings: Pick<Settings, 'DROPSHIP_AWS_MAX_ATTEMPTS' | 'DROPSHIP_AWS_TIMEOUT_SECONDS'>,
  label = 'doctor',
): Promise<string> {
  const sts = new STSClient(stsClientConfig(dest.region, settings));
  try {
    await sts.send(
      new AssumeRoleCommand({
        RoleArn: dest.roleArn,
        RoleSessionName: roleSessionName(dest.accountId, `${label}-${Date.now()}`),
        ...(externalId !== undefined ? { ExternalId: externalId } : {}),
        DurationSeconds: 900,
      }),
    );
    return 'OK';
  } catch (e) {
    return awsErrorCode(e) ?? 'Error';
  } finally {
    sts.destroy();
  }
}

/**
 * Throws unless AssumeRole without an external ID is denied: exports go only to roles whose trust
 * policy enforces the external ID.
 */
export async function verifyExternalIdEnforced(
  dest: Destination,
  settings: Pick<Settings, 'DROPSHIP_AWS_MAX_ATTEMPTS' | 'DROPSHIP_AWS_TIMEOUT_SECONDS'>,
): Promise<void> {
  const answer = await probeAssumeRole(dest, undefined, settings, 'extid-probe');
  // Only an explicit denial proves enforcement; throttling or an outage proves nothing.
  if (answer !== 'OK' && answer !== 'AccessDenied') {
    throw new AwsError(
      `account ${dest.accountId}: could not verify that role ${dest.roleArn} requires the external ID (STS answered ${answer}); not exporting`,
    );
  }
  if (answer === 'OK') {
    throw new DestinationAccessError(
      `account ${dest.accountId}: refusing to export — role ${dest.roleArn} can be assumed without the external ID ` +
        `(confused-deputy risk). Add the condition StringEquals sts:ExternalId to its trust policy ` +
        `(print it with: dropship policy --account ${dest.accountId})`,
      { failure: { code: 'external_id_not_enforced', dest } },
    );
  }
}
