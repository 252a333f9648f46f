import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../../src/cli/run-cli.js';
import { ConfigError, nodeCommand, parseConfig } from '../../src/config/load-config.js';

const EXAMPLE = join(import.meta.dirname, '../../config/okome.example.yml');
const exampleText = readFileSync(EXAMPLE, 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'okome-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// biome-ignore lint/suspicious/noExplicitAny: the mutations reach into arbitrary YAML documents
type Doc = Record<string, any>;

function mutated(change: (doc: Doc) => void): string {
  const doc = parse(exampleText) as Doc;
  change(doc);
  return stringify(doc);
}

async function check(text: string) {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, text);
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['config', 'check', '--static', file], {
    env: {},
    cwd: dir,
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

const broken: ReadonlyArray<readonly [string, (doc: Doc) => void, string]> = [
  ['missing key', (d) => delete d.vip, 'vip'],
  ['bad address', (d) => (d.nodes[0].address = '300.1.2.3.4'), 'nodes.0.address'],
  ['bad fingerprint', (d) => (d.nodes[1].ssh.hostKey = 'MD5:aa:bb'), 'nodes.1.ssh.hostKey'],
  ['duplicate node name', (d) => (d.nodes[1].name = 'pi-a'), 'nodes.1.name'],
  [
    'action naming an unknown node',
    (d) => (d.actions[2].targets.nodes = ['pi-a', 'pi-z']),
    'actions.2.targets.nodes.1',
  ],
  [
    'action naming an unknown purpose',
    (d) => (d.actions[0].steps = [{ run: 'rebootEverything' }]),
    'actions.0.steps.0',
  ],
  ['secret written in the file', (d) => (d.slack.botToken = 'xoxb-123-456-abc'), 'slack.botToken'],
  [
    'secret value under another key',
    (d) => (d.nodes[0].ssh.privateKeyPath = '-----BEGIN OPENSSH PRIVATE KEY-----'),
    'nodes.0.ssh.privateKeyPath',
  ],
  ['wrong type', (d) => (d.thresholds.diskPercent = 'eighty'), 'thresholds.diskPercent'],
  ['unknown key (typo)', (d) => (d.thresholds.diskPercentage = 80), 'thresholds.diskPercentage'],
  ['bad channel id', (d) => (d.slack.incidentChannel = '#okome-incidents'), 'slack.incidentChannel'],
  ['bad approver id', (d) => (d.slack.approvers.users = ['alice']), 'slack.approvers.users.0'],
  ['unknown role', (d) => (d.nodes[0].roles = ['edge']), 'nodes.0.roles.0'],
  ['restart with no service', (d) => (d.actions[0].steps = [{ run: 'serviceRestart' }]), 'actions.0.steps.0'],
  ['node with the VIP address', (d) => (d.nodes[1].address = d.vip.address), 'nodes.1.address'],
  ['multi-line command', (d) => (d.commands.disk = 'df -P /\nrm -rf /'), 'commands.disk'],
  ['replicas on a SQLite store (one bot per file)', (d) => (d.store.replicas = true), 'store.replicas'],
  [
    'orchestrator url without scheme',
    (d) => (d.orchestrator.baseUrl = '10.86.0.25:8000'),
    'orchestrator.baseUrl',
  ],
];

describe('okome config check', () => {
  it('passes the example config with a one-line summary and exit 0', async () => {
    const r = await check(exampleText);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok \(static\): .*2 node\(s\).*VIP \S+.*8 action\(s\)\n$/);
    expect(r.stderr).toBe('');
  });

  it('warns, exit 0, when slack.allowedChannels is empty: the bot would answer in every channel', async () => {
    for (const change of [
      (d: Doc) => (d.slack.allowedChannels = []),
      (d: Doc) => delete d.slack.allowedChannels,
    ]) {
      const r = await check(mutated(change));
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^ok \(static\): /);
      expect(r.stderr).toContain('⚠ warning: slack.allowedChannels: empty');
      expect(r.stderr).toMatch(/fix: list the channels/);
    }
  });

  it.each(broken)('%s: names the key path with a fix and exits 2', async (_name, change, path) => {
    const r = await check(mutated(change));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`✗ ${path}:`);
    expect(r.stderr).toMatch(/fix: \S/);
    expect(r.stdout).toBe('');
  });

  it('prints every problem at once', async () => {
    const r = await check(
      mutated((d) => {
        d.nodes[0].address = 'not an address!';
        d.nodes[1].ssh.hostKey = 'nope';
        d.slack.incidentChannel = 'general';
      }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^.*: 3 problem\(s\)/);
    for (const p of ['nodes.0.address', 'nodes.1.ssh.hostKey', 'slack.incidentChannel'])
      expect(r.stderr).toContain(`✗ ${p}:`);
  });

  it('shows the value seen, but never a secret', async () => {
    const r = await check(mutated((d) => (d.redis.password = 'hunter2-super-secret')));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('redis.password');
    expect(r.stderr).not.toContain('hunter2');
    const bad = await check(mutated((d) => (d.nodes[0].address = '10.0.0.999')));
    expect(bad.stderr).toContain('got "10.0.0.999"');
  });

  it('reports YAML syntax errors and a missing file with exit 2', async () => {
    expect((await check('nodes: [\n  - name: x\n')).code).toBe(2);
    const out: string[] = [];
    const code = await runCli(['config', 'check', join(dir, 'absent.yml')], {
      env: {},
      cwd: dir,
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => out.push(t) },
    });
    expect(code).toBe(2);
    expect(out.join('')).toContain('OKOME_CONFIG_NOT_FOUND');
    // The path was given: the fix is to make the file, not to pass --config again.
    expect(out.join('')).toContain('copy config/okome.example.yml there and edit it');
    expect(out.join('')).not.toMatch(/pass --config FILE/);
  });

  it('takes the file from OKOME_CONFIG when no argument is given', async () => {
    const out: string[] = [];
    const code = await runCli(['config', 'check', '--static'], {
      env: { OKOME_CONFIG: EXAMPLE },
      cwd: dir,
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => out.push(t) },
    });
    expect(code).toBe(0);
  });
});

describe('parseConfig', () => {
  it('fills defaults, resolves per-node commands and freezes the result', () => {
    const config = parseConfig(
      mutated((d) => (d.nodes[1].commands = { disk: 'df -P /var' })),
      join(dir, 'x.yml'),
    );
    const [a, b] = config.nodes;
    expect(a?.command.disk).toBe('df -P /');
    expect(b?.command.disk).toBe('df -P /var');
    expect(config.timeouts.statusMs).toBe(8000);
    expect(config.actions.find((x) => x.id === 'flush-redis')?.approvals).toBe(2);
    expect(Object.isFrozen(config.nodes)).toBe(true);
    expect(a && nodeCommand(a, 'serviceRestart', 'nginx')).toBe('sudo systemctl restart nginx');
    expect(() => a && nodeCommand(a, 'serviceRestart', 'redis-server')).toThrow(/does not run/);
  });

  it('throws a ConfigError carrying the problems', () => {
    expect(() => parseConfig('nodes: 3', 'bad.yml')).toThrow(ConfigError);
  });
});
