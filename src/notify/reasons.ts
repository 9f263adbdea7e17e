/**
 * The customer's words for a failure: src/destinations/wording.ts (by the destination's target kind;
 * the S3 adapter's wording is src/destinations/s3/customer-failure.ts). Re-exported here for notify.
 */
export { describeFailure, errorText, failureCodeOf } from '../destinations/wording.js';
