import { type Command, Option } from 'commander';
import type { DestinationPatch } from '../accounts/registry.js';
import { PLANS } from '../contracts/plans.js';
import { COMPRESSION_CHOICES, LAYOUTS } from '../contracts/receipt.js';
import type { SelectionInput } from '../contracts/selection.js';
import { COMPRESSION_HELP } from './compression-option.js';

/**
 * The flags of `dropship destinations update` (and the selection flags of `add`), one row each:
 * the flag, the destination field it sets (`selection.x` for the selection), its help. A flag that
 * clears a field (`--no-…`) sets it to null. Add a row here to make a new field updatable.
 */
export interface DestinationFlag {
  flags: string;
  field: keyof DestinationPatch | `selection.${keyof NonNullable<DestinationPatch['selection']>}` | 'selection.tenant';
  help: string;
  choices?: readonly string[];
  /** Only on `update` (clearing flags). */
  updateOnly?: boolean;
  /** Also on `add` (besides the selection flags). */
  onAdd?: boolean;
}

export const DESTINATION_FLAGS: DestinationFlag[] = [
  { flags: '--plan <plan>', field: 'plan', help: 'plan: paid (04:00 and 15:00 UTC) or free (04:00)', choices: PLANS },
  { flags: '--bucket <name>', field: 'bucket', help: 'the customer’s bucket name (not the ARN)' },
  { flags: '--prefix <path>', field: 'prefix', help: 'folder inside the bucket' },
  { flags: '--region <region>', field: 'region', help: 'the bucket’s region, e.g. eu-west-1' },
  { flags: '--role-arn <arn>', field: 'roleArn', help: 'the role dropship assumes, in the customer’s account' },
  { flags: '--kms-key-arn <arn>', field: 'kmsKeyArn', help: 'KMS key for SSE-KMS' },
  { flags: '--no-kms-key-arn', field: 'kmsKeyArn', help: 'stop using SSE-KMS', updateOnly: true },
  { flags: '--source-schema <schema>', field: 'sourceSchema', help: 'Postgres schema holding the account’s tables' },
  {
    flags: '--layout <layout>',
    field: 'layout',
    help: 'object layout: dreamdata (the model) or portable (no colon, .parquet)',
    choices: LAYOUTS,
  },
  {
    flags: '--compression <codec>',
    field: 'compression',
    help: COMPRESSION_HELP,
    choices: COMPRESSION_CHOICES,
  },
  {
    flags: '--changes',
    field: 'changes',
    help: 'also deliver change files (insert/update/delete since the last successful delivery) for tables with a primary key',
    onAdd: true,
  },
  { flags: '--no-changes', field: 'changes', help: 'stop delivering change files', updateOnly: true },
  {
    flags: '--tenant-column <column>',
    field: 'selection.tenantColumn',
    help: 'tenant mode: export only rows whose <column> equals --tenant-value (integer, uuid or text column)',
  },
  {
    flags: '--tenant-value <value>',
    field: 'selection.tenantValue',
    help: 'tenant mode: this destination’s tenant, compared in the column’s own type',
  },
  {
    flags: '--no-tenant',
    field: 'selection.tenant',
    help: 'leave tenant mode (export whole tables again)',
    updateOnly: true,
  },
  {
    flags: '--drop-tenant-column',
    field: 'selection.dropTenantColumn',
    help: 'tenant mode: leave the tenant column out of the files',
  },
  {
    flags: '--no-drop-tenant-column',
    field: 'selection.dropTenantColumn',
    help: 'keep the tenant column in the files',
    updateOnly: true,
  },
  {
    flags: '--global-tables <names>',
    field: 'selection.globalTables',
    help: 'tenant mode: tables without the tenant column to export whole, named exactly, e.g. "countries,currencies" ("" clears)',
  },
  {
    flags: '--include-tables <globs>',
    field: 'selection.includeTables',
    help: 'export only tables matching these globs ("" clears: every table)',
  },
  {
    flags: '--exclude-tables <globs>',
    field: 'selection.excludeTables',
    help: 'never export tables matching these globs ("" clears)',
  },
  {
    flags: '--exclude-columns <table.column,…>',
    field: 'selection.excludeColumns',
    help: 'leave these columns out, globs on both sides, e.g. "contacts.email,*.ssn" ("" clears)',
  },
];

/** Adds the table's flags to a command (all of them for update; the selection ones for add). */
export function addDestinationFlags(cmd: Command, which: 'update' | 'add-selection'): Command {
  for (const f of DESTINATION_FLAGS) {
    if (which === 'add-selection' && (f.updateOnly || !(f.field.startsWith('selection.') || f.onAdd))) continue;
    const o = new Option(f.flags, f.help);
    if (f.choices) o.choices(f.choices);
    cmd.addOption(o);
  }
  return cmd;
}

/** The patch the given options describe (only what was given). */
export function patchFromOptions(opts: Record<string, unknown>): DestinationPatch {
  const patch: Record<string, unknown> = {};
  const selection: Record<string, unknown> = {};
  for (const f of DESTINATION_FLAGS) {
    const attr = new Option(f.flags).attributeName();
    const v = opts[attr];
    if (v === undefined) continue;
    if (f.field === 'selection.tenant') {
      if (v === false)
        Object.assign(selection, { tenantColumn: null, tenantValue: null, dropTenantColumn: false, globalTables: [] });
      continue;
    }
    const value = v === false && !f.field.endsWith('dropTenantColumn') && f.field !== 'changes' ? null : v;
    if (f.field.startsWith('selection.')) selection[f.field.slice('selection.'.length)] = value;
    else patch[f.field] = value;
  }
  if (Object.keys(selection).length > 0) patch.selection = selection;
  return patch as DestinationPatch;
}

/** `destinations add … --changes`. */
export function changesFromOptions(opts: Record<string, unknown>): { changes?: boolean } {
  return opts.changes === true ? { changes: true } : {};
}

/** The selection part of `destinations add` options. */
export function selectionFromOptions(opts: Record<string, unknown>): SelectionInput {
  const sel = patchFromOptions(opts).selection ?? {};
  return Object.fromEntries(Object.entries(sel).filter(([, v]) => v !== null)) as SelectionInput;
}
