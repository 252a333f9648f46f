/**
 * The runtime check outside the CLI: `npm test`, `npm run bench` and `npm run lab` run it first
 * (pre-scripts), so a wrong Node gets the CLI's message and exit 2 instead of a test runner's
 * crash. `--install` (after `npm ci`, in .ci/run) is stricter: the running Node is exactly
 * .node-version, and every addon was compiled for its NODE_MODULE_VERSION.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtModuleVersion, COMPILED_ADDONS, checkRuntime } from '../src/cli/runtime-check.js';

const root = join(import.meta.dirname, '..');
const fail = (message: string): never => {
  process.stderr.write(message);
  process.exit(2);
};

const refusal = checkRuntime({ root });
if (refusal !== undefined) fail(refusal);

if (process.argv.includes('--install')) {
  const pinned = readFileSync(join(root, '.node-version'), 'utf8').trim();
  if (process.versions.node !== pinned) {
    fail(`check-runtime: running Node v${process.versions.node}, .node-version pins ${pinned}\n`);
  }
  const built: string[] = ['better-sqlite3 (Node-API)'];
  for (const addon of COMPILED_ADDONS) {
    const abi = builtModuleVersion(join(root, 'node_modules', addon.name), addon.file);
    if (abi === undefined) continue;
    if (abi !== process.versions.modules) {
      fail(
        `check-runtime: ${addon.name} was compiled for NODE_MODULE_VERSION ${abi}, this Node is ${process.versions.modules}: npm_config_nodedir must point at this Node's headers\n`,
      );
    }
    built.push(`${addon.name} ${abi}`);
  }
  process.stdout.write(
    `check-runtime: node v${process.versions.node}, NODE_MODULE_VERSION ${process.versions.modules}; addons built for it and loaded: ${built.join(', ')}\n`,
  );
}
