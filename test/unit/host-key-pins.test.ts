import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigForPinning, readHostKeyPins, withHostKeys } from '../../src/config/host-key-pins.js';
import { ConfigError } from '../../src/config/load-config.js';

/** Pins read and written in the operator's own file: only the pinned lines change. */

const EXAMPLE_FILE = join(import.meta.dirname, '../../config/okome.example.yml');
const EXAMPLE = readFileSync(EXAMPLE_FILE, 'utf8');
const KEY_A = `SHA256:${'a'.repeat(42)}A`;
const KEY_B = `SHA256:${'b'.repeat(42)}/`;

function node(ssh: string): string {
  return EXAMPLE.replace(/( {4}ssh:\n(?: {6}.*\n)+)(?= {4}services: \[nginx, keepalived\])/, ssh);
}

describe('host-key pins', () => {
  it('the example: both placeholders, replaced in place with every other byte kept', () => {
    expect(readHostKeyPins(EXAMPLE)).toEqual([
      {
        index: 0,
        state: { kind: 'placeholder', value: 'SHA256:REPLACEwithTHEpinnedKEYofPIa000000000000000' },
      },
      {
        index: 1,
        state: { kind: 'placeholder', value: 'SHA256:REPLACEwithTHEpinnedKEYofPIb000000000000000' },
      },
    ]);
    const written = withHostKeys(
      EXAMPLE,
      new Map([
        [0, KEY_A],
        [1, KEY_B],
      ]),
    );
    expect(written).toBe(
      EXAMPLE.replace('SHA256:REPLACEwithTHEpinnedKEYofPIa000000000000000', KEY_A).replace(
        'SHA256:REPLACEwithTHEpinnedKEYofPIb000000000000000',
        KEY_B,
      ),
    );
    expect(readHostKeyPins(written)?.map((p) => p.state)).toEqual([
      { kind: 'pinned', value: KEY_A },
      { kind: 'pinned', value: KEY_B },
    ]);
  });

  it.each([
    [
      'block, no hostKey',
      '    ssh:\n      user: pi\n      privateKeyPath: k   # the key\n',
      `    ssh:\n      user: pi\n      privateKeyPath: k   # the key\n      hostKey: ${KEY_A}\n`,
    ],
    [
      'flow, no hostKey',
      '    ssh: { user: pi, privateKeyPath: k }\n',
      `    ssh: { user: pi, privateKeyPath: k, hostKey: ${KEY_A} }\n`,
    ],
    [
      'empty value',
      '    ssh:\n      hostKey:\n      user: pi\n      privateKeyPath: k\n',
      `    ssh:\n      hostKey: ${KEY_A}\n      user: pi\n      privateKeyPath: k\n`,
    ],
    [
      'quoted placeholder',
      "    ssh:\n      user: pi\n      privateKeyPath: k\n      hostKey: 'SHA256:REPLACEme'\n",
      `    ssh:\n      user: pi\n      privateKeyPath: k\n      hostKey: '${KEY_A}'\n`,
    ],
  ])('%s: pinned where it belongs, the file loads with it', (_name, ssh, expected) => {
    const text = node(ssh);
    expect(text).not.toBe(EXAMPLE);
    expect(readHostKeyPins(text)?.[0]?.state.kind).not.toBe('pinned');
    const written = withHostKeys(text, new Map([[0, KEY_A]]));
    expect(written).toBe(node(expected));
    expect(parseConfigForPinning(written, 'x.yml').config.nodes[0]?.ssh.hostKey).toBe(KEY_A);
  });

  it('a file with an unpinned node still loads for pinning; its other problems are still problems', () => {
    const text = node('    ssh:\n      user: pi\n      privateKeyPath: k\n');
    const { config, pins } = parseConfigForPinning(text, 'x.yml');
    expect(config.nodes).toHaveLength(2);
    expect(pins[0]?.state).toEqual({ kind: 'missing' });
    expect(() =>
      parseConfigForPinning(text.replace('diskPercent: 80', 'diskPercent: lots'), 'x.yml'),
    ).toThrow(ConfigError);
  });

  it('a value the operator wrote is a pin, even a malformed one (never replaced; the schema says why)', () => {
    const text = node('    ssh:\n      user: pi\n      privateKeyPath: k\n      hostKey: SHA256:short\n');
    expect(readHostKeyPins(text)?.[0]?.state).toEqual({ kind: 'pinned', value: 'SHA256:short' });
    expect(() => parseConfigForPinning(text, 'x.yml')).toThrow(/configuration problem/);
  });
});
