import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addonLoadProblem, nodeVersionProblem, parseNodeRange } from '../../src/cli/runtime-check.js';

const root = join(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const pinned = read('.node-version').trim();
const pkg = JSON.parse(read('package.json')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};

describe('the one Node version (.node-version)', () => {
  it('is an exact version that package.json engines, @types/node and the Dockerfile follow', () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const major = pinned.split('.')[0];
    expect(pkg.engines.node).toBe(`^${pinned}`);
    expect(pkg.devDependencies['@types/node']?.split('.')[0]).toBe(major);
    const froms = read('Dockerfile').match(/^FROM \S+/gm) ?? [];
    expect(froms).toHaveLength(2);
    for (const from of froms) expect(from).toBe(`FROM node:${pinned}-trixie-slim`);
  });

  it('is the Node the README asks for and the tests run on', () => {
    expect(read('README.md')).toContain(`Requirements: Node.js ${pinned}`);
    expect(process.versions.node.split('.')[0]).toBe(pinned.split('.')[0]);
  });
});

describe('nodeVersionProblem', () => {
  it('accepts the pinned version and later ones of the same major', () => {
    expect(nodeVersionProblem('26.12.1', '^26.12.1')).toBeUndefined();
    expect(nodeVersionProblem('v26.13.0', '^26.12.1')).toBeUndefined();
  });

  it.each(['20.20.2', '26.12.0', '26.9.3', '27.0.0'])('refuses %s, saying what to do', (version) => {
    expect(nodeVersionProblem(version, '^26.12.1')).toBe(
      `okome: Node.js v${version} cannot run okome-bot: it needs Node.js ^26.12.1 (package.json engines).\n` +
        'Use the project\'s Node and reinstall the dependencies with it:\n  eval "$(scripts/use-node.sh)" && npm ci\n',
    );
  });

  it('names an engines range it cannot read', () => {
    expect(parseNodeRange('>=20.18')).toBeUndefined();
    expect(nodeVersionProblem('26.12.1', '>=20.18')).toContain(
      'engines.node ">=20.18" is not of the form ^X.Y.Z',
    );
  });
});

describe('addonLoadProblem', () => {
  it("gives both ABIs from Node's dlopen message", () => {
    const error = new Error(
      "The module '/x/sshcrypto.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\nNODE_MODULE_VERSION 147.",
    );
    expect(addonLoadProblem('ssh2', error, '147')).toMatch(
      /^okome: the native module of ssh2 was built for another Node\.js \(NODE_MODULE_VERSION 115; this Node needs 147\)\.\n/,
    );
  });

  it('gives the first line of any other load error', () => {
    expect(addonLoadProblem('better-sqlite3', new Error('invalid ELF header\nmore'), '147')).toMatch(
      /^okome: the native module of better-sqlite3 does not load: invalid ELF header\.\n/,
    );
  });
});
