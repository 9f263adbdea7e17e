// serverless.yml's door to dropship's settings (src/config/deploy.ts): the deploy reads the same
// validated settings as every function and the CLI. Serverless Framework 3 loads variable files with
// require(), so this shim is CommonJS and loads the TypeScript source through tsx.
const { require: tsxRequire } = require('tsx/cjs/api');

module.exports = async () => {
  const { deployConfig } = tsxRequire('../src/config/deploy.ts', __filename);
  // `serverless deploy` (not package/print): the settings a real deployment needs must be given.
  const command = process.argv.slice(2).find((a) => !a.startsWith('-'));
  return deployConfig(process.env, { deploying: command === 'deploy' });
};
