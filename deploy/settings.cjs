// serverless.yml's door to dropship's settings (src/config/deploy.ts): the deploy reads the same
// validated settings as every function and the CLI. Serverless Framework 3 loads variable files with
// require(), so this shim is CommonJS and loads the TypeScript source through tsx.
const { require: tsxRequire } = require('tsx/cjs/api');

module.exports = async () => {
  const { deployConfig } = tsxRequire('../src/config/deploy.ts', __filename);
  return deployConfig(process.env);
};
