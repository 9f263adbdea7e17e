/**
 * How often the drift check (./drift.ts) runs the external-ID probe at most. Its own module, free
 * of the drift check's AWS and database imports, so the CLI's help text can name it cheaply.
 */
export const EXTERNAL_ID_PROBE_HOURS = 24;
