import { Ajv } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';
import receiptSchema from '../../schemas/receipt.schema.json' with { type: 'json' };
import statusSchema from '../../schemas/status.schema.json' with { type: 'json' };

/** Where the precompiled validators live (committed; `npm run docs:validators` writes it). */
export const VALIDATORS_PATH = new URL('../contracts/validators.generated.ts', import.meta.url);

/**
 * The receipt's and status document's validators as code (Ajv's "standalone validation code"), so a process does not
 * compile the schemas at every start: compiling them was ~55 ms of CPU per cold start (Lambda) and per CLI command in a
 * profile of the export process (issue 27). Options as before: all errors, not strict, and the schemas checked
 * against JSON Schema's meta-schema once, in src/receipt/validate.test.ts, not at every start.
 */
export function validatorsText(): string {
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    validateSchema: false,
    code: { source: true, esm: true, lines: true },
    schemas: { receipt: receiptSchema, status: statusSchema },
  });
  // Ajv's ES-module output still loads its runtime helpers (ucs2length for string lengths) with require(), which an
  // ES module does not have: imported instead.
  const imports: string[] = [];
  const code = standalone
    .default(ajv, { receipt: 'receipt', status: 'status' })
    .replace(/const (\w+) = require\("([^"]+)"\)\.default;/g, (_all: string, name: string, module: string) => {
      imports.push(`import ${name}Module from '${module}.js';`);
      // A CommonJS module: its default import is module.exports or, through some loaders' interop, exports.default.
      return `const ${name} = typeof ${name}Module === 'function' ? ${name}Module : ${name}Module.default;`;
    });
  if (/\brequire\(/.test(code)) throw new Error('the standalone validators still require() a module');
  return `// @ts-nocheck\n// Generated from schemas/receipt.schema.json and schemas/status.schema.json by src/receipt/schema-validators.ts\n// (npm run docs:validators): do not edit. src/receipt/validate.test.ts checks it is current.\n${imports.join('\n')}\n${code}\n`;
}
