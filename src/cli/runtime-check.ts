import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Runs before anything else in the CLI, possibly under an old Node: node: built-ins only, and
// nothing newer than Node 18 can parse (no import.meta.dirname either).

/**
 * Addons that node-gyp compiles at install against npm_config_nodedir's headers (V8's ABI, not
 * Node-API): they load only under the Node whose NODE_MODULE_VERSION they were built for. Both
 * are ssh2's optional speed-ups (ssh2 silently falls back without them), so a missing one is
 * fine but one built for another Node is an install mistake. better-sqlite3 13 is Node-API with
 * prebuilt binaries and is checked by opening a database instead.
 */
export const COMPILED_ADDONS: readonly CompiledAddon[] = [
  { name: 'ssh2', file: 'lib/protocol/crypto/build/Release/sshcrypto.node' },
  { name: 'cpu-features', file: 'build/Release/cpufeatures.node' },
];

export interface CompiledAddon {
  readonly name: string;
  /** The compiled addon, relative to the package's folder. */
  readonly file: string;
}

const FIX =
  'Use the project\'s Node and reinstall the dependencies with it:\n  eval "$(scripts/use-node.sh)" && npm ci\n';

/** `^26.12.1` → the major and the minimum version, the only range form the project uses. */
export function parseNodeRange(range: string): { major: number; minimum: readonly number[] } | undefined {
  const match = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range.trim());
  if (match === null) return undefined;
  const minimum = match.slice(1, 4).map(Number);
  return { major: minimum[0] ?? 0, minimum };
}

/** Why this Node version cannot run okome, or undefined when it can. */
export function nodeVersionProblem(version: string, range: string): string | undefined {
  const wanted = parseNodeRange(range);
  if (wanted === undefined) return `okome: package.json engines.node "${range}" is not of the form ^X.Y.Z\n`;
  const running = version.replace(/^v/, '').split('.').map(Number);
  const [major = 0, minor = 0, patch = 0] = running;
  const [, minMinor = 0, minPatch = 0] = wanted.minimum;
  const tooOld = minor < minMinor || (minor === minMinor && patch < minPatch);
  if (major === wanted.major && !tooOld) return undefined;
  return `okome: Node.js v${running.join('.')} cannot run okome-bot: it needs Node.js ${range} (package.json engines).\n${FIX}`;
}

/**
 * Why a native addon failed to load, with both ABIs when known: from Node's message, or from
 * the addon's build config (an addon built on V8's API for another Node says only "Module did
 * not self-register").
 */
export function addonLoadProblem(addon: string, error: unknown, modules: string, builtFor?: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const abi = /NODE_MODULE_VERSION (\d+)/.exec(message)?.[1] ?? builtFor;
  const why =
    abi !== undefined && abi !== modules
      ? `was built for another Node.js (NODE_MODULE_VERSION ${abi}; this Node needs ${modules})`
      : `does not load: ${(message.split('\n')[0] ?? '').replace(/\.$/, '')}`;
  return `okome: the native module of ${addon} ${why}.\n${FIX}`;
}

/** The NODE_MODULE_VERSION an addon was compiled against, from the config node-gyp leaves beside it. */
export function builtModuleVersion(packageDir: string, addonFile: string): string | undefined {
  const buildDir = dirname(dirname(join(packageDir, addonFile)));
  const gypi = join(buildDir, 'config.gypi');
  if (!existsSync(gypi)) return undefined;
  return /"node_module_version":\s*(\d+)/.exec(readFileSync(gypi, 'utf8'))?.[1];
}

export interface RuntimeCheckOptions {
  /** The project's root (package.json, node_modules). Default: two folders above this file. */
  readonly root?: string;
  readonly nodeVersion?: string;
  readonly modules?: string;
}

/** Checks the running Node against package.json's engines, then loads every native addon. */
export function checkRuntime(options: RuntimeCheckOptions = {}): string | undefined {
  const root = options.root ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const nodeVersion = options.nodeVersion ?? process.versions.node;
  const modules = options.modules ?? process.versions.modules;
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines?: { node?: string } };
  const versionProblem = nodeVersionProblem(nodeVersion, pkg.engines?.node ?? '');
  if (versionProblem !== undefined) return versionProblem;
  // A wrong-ABI addon throws here, at load, instead of crashing later inside the real program.
  const load = createRequire(join(root, 'package.json'));
  try {
    const Database = load('better-sqlite3') as new (file: string) => { close(): void };
    new Database(':memory:').close();
  } catch (error) {
    return addonLoadProblem('better-sqlite3', error, modules);
  }
  for (const addon of COMPILED_ADDONS) {
    const packageDir = join(root, 'node_modules', addon.name);
    const file = join(packageDir, addon.file);
    if (!existsSync(file)) continue;
    try {
      load(file);
    } catch (error) {
      return addonLoadProblem(addon.name, error, modules, builtModuleVersion(packageDir, addon.file));
    }
  }
  return undefined;
}
