import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../../src/cli/run-cli.js';
import type { HostAccess } from '../../src/config/deployment-check.js';
import { allKeyPaths, configJsonSchema } from '../../src/config/json-schema.js';

/** `okome config check`: --static (the file) and the full check (the file on this host). */

const ROOT = join(import.meta.dirname, '../..');
const EXAMPLE = join(ROOT, 'config/okome.example.yml');
const exampleText = readFileSync(EXAMPLE, 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'okome-full-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const READY_ENV = { SLACK_BOT_TOKEN: 'xoxb-1-2-abc', SLACK_APP_TOKEN: 'xapp-1-A1-2-abc' };

// biome-ignore lint/suspicious/noExplicitAny: the mutations reach into arbitrary YAML documents
type Doc = Record<string, any>;

/** The example as an operator finishes it: real IDs and host keys, a private key of their own. */
function ready(change: (doc: Doc, key: string) => void = () => {}): string {
  const key = join(dir, `id-${Math.random().toString(36).slice(2)}`);
  writeFileSync(key, 'not really a key');
  chmodSync(key, 0o600);
  const doc = parse(exampleText) as Doc;
  doc.nodes[0].ssh.hostKey = `SHA256:${'A'.repeat(43)}`;
  doc.nodes[1].ssh.hostKey = `SHA256:${'B'.repeat(43)}`;
  for (const node of doc.nodes) node.ssh.privateKeyPath = key;
  doc.slack.incidentChannel = 'C0REALINC1';
  doc.slack.allowedChannels = ['C0REALINC1'];
  doc.slack.approvers = { users: ['U0REALOPS1'], groups: [] };
  change(doc, key);
  return stringify(doc);
}

async function check(text: string, args: string[] = [], env: NodeJS.ProcessEnv = READY_ENV) {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, text);
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['config', 'check', ...args, file], {
    env,
    cwd: dir,
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('okome config check --static and the full check', () => {
  it('the shipped example passes --static, and fails the full check naming each placeholder', async () => {
    expect((await check(exampleText, ['--static'])).code).toBe(0);
    const full = await check(exampleText);
    expect(full.code).toBe(2);
    for (const path of [
      'nodes.0.ssh.hostKey',
      'nodes.1.ssh.hostKey',
      'slack.incidentChannel',
      'slack.approvers.users.0',
    ])
      expect(full.stderr).toContain(`✗ ${path}: still the example’s placeholder`);
    expect(full.stderr).toContain('✗ nodes.0.ssh.privateKeyPath: no such file');
  });

  it('a finished configuration on a ready host passes the full check', async () => {
    const r = await check(ready());
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ok: /);
    expect(r.code).toBe(0);
  });

  it("OpenSSH's rule: a key its owner lets others read is refused (0644), 0600 passes", async () => {
    const r = await check(ready((_doc, key) => chmodSync(key, 0o644)));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nodes\.0\.ssh\.privateKeyPath: permissions 0644 are too open/);
    expect(r.stderr).toMatch(/fix: chmod 600 /);
  });

  it('a key owned by someone else is judged by readability alone', async () => {
    const other: HostAccess = {
      stat: () => ({ uid: 4242, mode: 0o100640 }),
      readable: () => false,
      uid: 1000,
    };
    const { configCheck } = await import('../../src/cli/config-check.js');
    const file = join(dir, 'other.yml');
    writeFileSync(file, ready());
    const err: string[] = [];
    const code = configCheck(
      file,
      {
        env: READY_ENV,
        cwd: dir,
        stdout: { write: () => true },
        stderr: { write: (t: string) => err.push(t) },
      },
      { static: false, host: other },
    );
    expect(code).toBe(2);
    expect(err.join('')).toMatch(/privateKeyPath: not readable by this user/);
    expect(err.join('')).not.toMatch(/too open/);
  });

  it.each([
    [{}, /SLACK_BOT_TOKEN is not set/],
    [{ SLACK_BOT_TOKEN: 'xoxb-1-2-abc' }, /neither SLACK_APP_TOKEN \(Socket Mode\) nor SLACK_SIGNING_SECRET/],
    [{ ...READY_ENV, SLACK_APP_TOKEN: 'nope' }, /SLACK_APP_TOKEN must be an app-level token/],
  ])('the environment the mode needs: %j', async (env, message) => {
    const r = await check(ready(), [], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect((await check(ready(), ['--static'], env)).code).toBe(0);
  });

  it('the environment the configuration asks for: Alertmanager credentials, a node’s hook secret', async () => {
    const r = await check(
      ready((doc) => {
        doc.alerts.alertmanager = { url: 'http://127.0.0.1:9093', auth: 'bearer' };
        doc.nodes[0].hookSecretEnv = 'OKOME_KEEPALIVED_SECRET_PI_A';
      }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('OKOME_ALERTMANAGER_API_TOKEN is not set');
    expect(r.stderr).toContain('OKOME_KEEPALIVED_SECRET_PI_A (nodes.pi-a.hookSecretEnv) is not set');
  });
});

describe('problems in plain words', () => {
  it('"did you mean" for an unknown key, at any depth', async () => {
    const r = await check(
      ready((doc) => {
        doc.thresholds.diskPercentage = 80;
        doc.nodes[1].ssh.hostkey = doc.nodes[1].ssh.hostKey;
        doc.remediaton = { dryRun: true };
      }),
      ['--static'],
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('✗ thresholds.diskPercentage: unknown key. Did you mean "diskPercent"?');
    expect(r.stderr).toContain('✗ nodes.1.ssh.hostkey: unknown key. Did you mean "hostKey"?');
    expect(r.stderr).toContain('✗ remediaton: unknown key. Did you mean "remediation"?');
  });

  it.each([
    [(d: Doc) => delete d.nodes[0].ssh.hostKey, '✗ nodes.0.ssh.hostKey: missing'],
    [
      (d: Doc) => (d.thresholds.diskPercent = 'eighty'),
      '✗ thresholds.diskPercent: must be a number, not text',
    ],
    [(d: Doc) => (d.nodes[0].services = []), '✗ nodes.0.services: needs at least 1 item(s)'],
    [
      (d: Doc) => (d.log.level = 'loud'),
      '✗ log.level: must be one of: trace, debug, info, warn, error, fatal',
    ],
    [(d: Doc) => (d.actions[0].approvals = 9), '✗ actions.0.approvals: must be at most 5'],
  ])('schema problems read as words, never raw zod text (%#)', async (change, expected) => {
    const r = await check(ready(change), ['--static']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(expected);
    expect(r.stderr).not.toMatch(/Invalid input|expected \w+, received|Too (small|big)|Invalid option/);
  });

  it('a YAML syntax error names its line and column', async () => {
    const r = await check('nodes:\n  - name: pi-a\n    roles: [frontend\n', ['--static']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/YAML syntax at line \d+, column \d+/);
  });
});

describe('the JSON Schema and the example', () => {
  it('okome config schema prints the committed config/okome.schema.json, which accepts the example', async () => {
    const out: string[] = [];
    const code = await runCli(['config', 'schema'], {
      env: {},
      cwd: dir,
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: () => true },
    });
    expect(code).toBe(0);
    const printed = JSON.parse(out.join(''));
    expect(printed).toEqual(JSON.parse(readFileSync(join(ROOT, 'config/okome.schema.json'), 'utf8')));
    const validate = new Ajv2020({ strict: false }).compile(printed);
    expect(validate(parse(exampleText)), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...parse(exampleText), nope: 1 })).toBe(false);
  });

  it('the example starts with the yaml-language-server schema line', () => {
    expect(exampleText.split('\n')[0]).toBe('# yaml-language-server: $schema=./okome.schema.json');
  });

  it('the example documents every key of the schema (written, or commented out)', () => {
    const paths = allKeyPaths(configJsonSchema());
    expect(paths).toContain('remediation.dryRun');
    const undocumented = paths.filter((path) => {
      const segments = path.replaceAll('[]', '').split('.');
      const key = segments.at(-1) ?? '';
      return !new RegExp(`(^|[\\s{,#-])${key}:`, 'm').test(exampleText);
    });
    expect(undocumented).toEqual([]);
  });
});
