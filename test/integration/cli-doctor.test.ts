import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Document } from 'yaml';
import type { RunningApp } from '../../src/app.js';
import { runCli } from '../../src/cli/run-cli.js';
import { loadConfig } from '../../src/config/load-config.js';
import { generateSudoers } from '../../src/remediation/sudoers.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { startInProcessBot } from '../support/bot-harness.js';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';
import { missingTool } from '../support/required-tools.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';
import { PROMPT_EXIT_MS, spawnOkome } from '../support/spawn-okome.js';
import { closedLoopbackPort, type SshNodeConfig, sshNodeConfig } from '../support/ssh-node-config.js';

/**
 * `okome doctor` against real parts: OpenSSH's sshd and sudo on 127.0.0.1, the Slack emulator on
 * loopback, the SQLite store, an HTTP listener. Nothing off this machine.
 */

let sshd: SshdServer;
let emulator: SlackEmulator;
let cfg: SshNodeConfig | undefined;
const closers: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  [sshd, emulator] = await Promise.all([startSshd(), startSlackEmulator()]);
});
afterAll(async () => {
  await Promise.all([sshd?.stop(), emulator?.close()]);
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  cfg?.cleanup();
  cfg = undefined;
});

const SLACK_ENV = { SLACK_BOT_TOKEN: 'xoxb-doctor-test', SLACK_APP_TOKEN: 'xapp-doctor-test' };

async function doctor(path: string, env: NodeJS.ProcessEnv = {}, tty = false) {
  const out: string[] = [];
  const err: string[] = [];
  const started = performance.now();
  const code = await runCli(['doctor', '--config', path], {
    env,
    cwd: '/',
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t), isTTY: tty },
  });
  const stdout = out.join('');
  return {
    code,
    stdout,
    stderr: err.join(''),
    ms: performance.now() - started,
    line: (name: string) => lineOf(stdout, name),
  };
}

function lineOf(stdout: string, name: string): string {
  const found = stdout
    .split('\n')
    .find((l) => new RegExp(`^[✓✗–] ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `).test(l));
  if (found === undefined) throw new Error(`no line "${name}" in:\n${stdout}`);
  return found;
}

/** The example with Slack IDs of a real workspace's shape (no placeholder left) and both keys pinned. */
function operatorsFile(doc: Document): void {
  doc.setIn(['slack', 'incidentChannel'], 'C0INCIDENT');
  doc.setIn(['slack', 'allowedChannels'], ['C0INCIDENT']);
  doc.setIn(['slack', 'approvers'], { users: ['U0APPROVER1'] });
  doc.setIn(['nodes', 0, 'ssh', 'hostKey'], sshd.hostKeyFingerprint);
  doc.setIn(['nodes', 1, 'ssh', 'hostKey'], sshd.hostKeyFingerprint);
}

async function listening(server: Server | HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  );
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** A port that accepts connections and never says a word. */
async function silentPort(): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  const port = await listening(server);
  // Runs before the server's close (closers run last first), which waits for its connections.
  closers.push(() => {
    for (const s of sockets) s.destroy();
  });
  return port;
}

const isRoot = process.getuid?.() === 0;
const sudoMissing = missingTool(['sudo', 'visudo', 'iptables-save']);
const sudoWhy = !isRoot
  ? 'installing a sudoers drop-in for the test user needs root'
  : sudoMissing !== undefined
    ? `${sudoMissing} is not installed (Debian's sudo, iptables)`
    : undefined;
if (sudoWhy !== undefined) {
  if (process.env.OKOME_REQUIRE_LAB === '1') {
    it('okome doctor all green runs because OKOME_REQUIRE_LAB=1 requires it', () => {
      throw new Error(`did not run: ${sudoWhy}`);
    });
  } else
    console.warn(
      `okome doctor all-green test did not run: ${sudoWhy} (OKOME_REQUIRE_LAB=1 makes that a failure)`,
    );
}

describe.skipIf(sudoWhy !== undefined)(
  'okome doctor, everything right (root: a real sudoers drop-in)',
  () => {
    it('every line ✓, exit 0: sudo -n -l allows the catalogue and a read-only command ran; auth.test on the loopback emulator', async () => {
      cfg = await sshNodeConfig(sshd, (doc) => {
        operatorsFile(doc);
        doc.setIn(['timeouts', 'sshExecMs'], 5000);
      });
      const path = cfg.path;
      // The drop-in `okome sudoers` generates, checked by visudo, for the test user only; removed after.
      const text = generateSudoers(loadConfig(path));
      const staged = join(cfg.dir, 'okome-bot');
      writeFileSync(staged, text, { mode: 0o440 });
      execFileSync('/usr/sbin/visudo', ['-c', '-f', staged]);
      // Written under a name sudo skips (it has a dot), then renamed: sudo, which anything on
      // this machine may run meanwhile, never reads half a file.
      const dropIn = `/etc/sudoers.d/okome-doctor-test-${randomBytes(4).toString('hex')}`;
      writeFileSync(`${dropIn}.tmp`, text, { mode: 0o440 });
      closers.push(() => rmSync(dropIn, { force: true }));
      renameSync(`${dropIn}.tmp`, dropIn);
      // A store okome serve has created (migrated to the current schema).
      openSqliteStore({ path: join(cfg.dir, 'okome.db') }).close();

      const authTestsBefore = emulator.callsTo('auth.test').length;
      const run = await doctor(path, { ...SLACK_ENV, SLACK_API_URL: emulator.apiUrl });
      expect(run.stdout).not.toMatch(/^[✗–]/m);
      expect(run.code).toBe(0);
      expect(run.line('slack')).toContain(`auth.test at ${emulator.apiUrl}: bot U0BOT in team T1`);
      for (const node of ['pi-a', 'pi-b']) {
        expect(run.line(`${node} host key`)).toContain(
          `ED25519 256 ${sshd.hostKeyFingerprint} matches the pin`,
        );
        expect(run.line(`${node} ssh login`)).toContain(`logged in as ${sshd.user}`);
        expect(run.line(`${node} sudo`)).toMatch(
          /sudo -n -l allows all \d+ catalogue command\(s\); ran sudo -n \/usr\/sbin\/iptables-save \(read-only\): exit 0/,
        );
      }
      expect(run.line('store')).toMatch(/opens, schema version \d+ \(current\)/);
      expect(run.line('http')).toMatch(/is free \(the bot is not running here\)/);
      expect(run.stdout).toMatch(/^13 of 13 checks passed/m);
      expect(emulator.callsTo('auth.test').length).toBe(authTestsBefore + 1);
    });
  },
);

describe('okome doctor, things wrong', () => {
  it('no sudoers, no Slack tokens, no store yet: each its own ✗ (or ✓) line with what to try, exit 1', async () => {
    cfg = await sshNodeConfig(sshd, operatorsFile);
    const authTestsBefore = emulator.callsTo('auth.test').length;
    const run = await doctor(cfg.path);
    expect(run.code).toBe(1);
    expect(run.line('config')).toMatch(/^✓ /);
    expect(run.line('slack')).toMatch(/^✗ slack +SLACK_BOT_TOKEN is not set {2}try: set it/);
    expect(run.line('pi-a ssh login')).toMatch(/^✓ /);
    expect(run.line('pi-a sudo')).toMatch(
      /^✗ pi-a sudo +sudo -n refuses (\d+) of \1 catalogue command\(s\): .*\/usr\/bin\/systemctl restart nginx/,
    );
    expect(run.line('pi-a sudo')).toContain(
      `try: okome sudoers --node pi-a --config ${cfg.path} > okome-bot, copy it to pi-a, and there: visudo -cf okome-bot`,
    );
    expect(run.line('store')).toMatch(/^✓ store +.*okome\.db not created yet; okome serve creates it/);
    expect(emulator.callsTo('auth.test').length).toBe(authTestsBefore);
  });

  it('a Slack API URL off this machine is never called; a malformed token is named', async () => {
    cfg = await sshNodeConfig(sshd, operatorsFile);
    const offMachine = await doctor(cfg.path, { ...SLACK_ENV, SLACK_API_URL: 'http://slack.invalid/api/' });
    expect(offMachine.line('slack')).toMatch(
      /^✓ slack +tokens well-formed, Socket Mode \(SLACK_APP_TOKEN\); not sent to Slack \(okome serve checks them at start-up\)$/,
    );
    const malformed = await doctor(cfg.path, {
      SLACK_BOT_TOKEN: 'xoxp-user-token',
      SLACK_APP_TOKEN: 'xapp-1',
    });
    expect(malformed.line('slack')).toMatch(
      /^✗ slack +environment: SLACK_BOT_TOKEN must be a bot token starting with xoxb-/,
    );
  });

  it('environment and Slack each name their own variables, even when both are wrong at once', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['alerts', 'alertmanager', 'auth'], 'bearer');
    });
    const run = await doctor(cfg.path, { SLACK_BOT_TOKEN: 'not-a-token', OKOME_METRICS_TOKEN: 'short' });
    expect(run.line('slack')).toMatch(/^✗ slack +environment: SLACK_BOT_TOKEN must be a bot token/);
    expect(run.line('slack')).not.toContain('OKOME_');
    expect(run.line('environment')).toMatch(
      /^✗ environment +environment: OKOME_METRICS_TOKEN must be at least 16 characters/,
    );
    expect(run.line('environment')).not.toContain('SLACK_');
    const fixed = await doctor(cfg.path, { ...SLACK_ENV });
    expect(fixed.line('environment')).toMatch(
      /^✗ environment +.*alerts\.alertmanager\.auth is bearer, but OKOME_ALERTMANAGER_API_TOKEN is not set/,
    );
    expect(fixed.line('slack')).toMatch(/^✓ /);
  });

  it('store.kind postgres with nothing listening at OKOME_DATABASE_URL: ✗ store, at once', async () => {
    const closed = await closedLoopbackPort();
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['store', 'kind'], 'postgres');
    });
    const run = await doctor(cfg.path, {
      ...SLACK_ENV,
      OKOME_DATABASE_URL: `postgres://okome@127.0.0.1:${closed}/okome`,
    });
    expect(run.line('store')).toMatch(
      /^✗ store +cannot connect to PostgreSQL at .*127\.0\.0\.1:\d+.*try: check store\.path \(or OKOME_DATABASE_URL\)/,
    );
    const unset = await doctor(cfg.path, SLACK_ENV);
    expect(unset.line('store')).toMatch(
      /^✗ store +store\.kind is postgres but OKOME_DATABASE_URL is not set {2}try: set it to postgres:/,
    );
  });

  it('a refused bot token (auth.test on the loopback emulator): ✗ with the error', async () => {
    cfg = await sshNodeConfig(sshd, operatorsFile);
    emulator.fault({ method: 'auth.test', kind: 'ok_false', error: 'token_revoked' });
    closers.push(() => emulator.clearFaults());
    const run = await doctor(cfg.path, { ...SLACK_ENV, SLACK_API_URL: emulator.apiUrl });
    expect(run.line('slack')).toMatch(
      /^✗ slack +auth\.test at .* refused the bot token: token_revoked {2}try: reinstall the Slack app/,
    );
  });

  it('unreachable nodes: refused and silent, the rest not tried; the whole doctor within a few seconds', async () => {
    const closed = await closedLoopbackPort();
    const silent = await silentPort();
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['nodes', 0, 'ssh', 'port'], closed);
      doc.setIn(['nodes', 1, 'ssh', 'port'], silent);
      doc.setIn(['timeouts', 'sshConnectMs'], 1000);
    });
    const run = await doctor(cfg.path, SLACK_ENV);
    expect(run.code).toBe(1);
    expect(run.line('pi-a tcp')).toMatch(
      /^✗ pi-a tcp +127\.0\.0\.1:\d+: connection refused {2}try: is pi-a powered and on the network/,
    );
    for (const check of ['host key', 'ssh login', 'sudo'])
      expect(run.line(`pi-a ${check}`)).toMatch(/^– .* not tried: not reachable$/);
    expect(run.line('pi-b tcp')).toMatch(/^✓ /);
    expect(run.line('pi-b host key')).toMatch(
      /^✗ pi-b host key +no key exchange: no key exchange within 1000 ms/,
    );
    expect(run.line('pi-b ssh login')).toMatch(/not tried: the host key is not verified$/);
    expect(run.ms).toBeLessThan(3000);
  });

  it('a host key that differs: ✗ MISMATCH with the warning, nothing logged in', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['nodes', 1, 'ssh', 'hostKey'], `SHA256:${'Q'.repeat(43)}`);
    });
    const run = await doctor(cfg.path, SLACK_ENV);
    expect(run.line('pi-b host key')).toMatch(
      /^✗ pi-b host key +MISMATCH: offered SHA256:\S+, pinned SHA256:Q+ {2}try: WARNING: .*man in the middle/,
    );
    expect(run.line('pi-b ssh login')).toMatch(/^– /);
    expect(run.line('pi-a ssh login')).toMatch(/^✓ /);
  });

  it('a key sshd does not accept: ✗ ssh login with ssh-copy-id to try', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'okome-doctor-key-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const stranger = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['nodes', 0, 'ssh', 'privateKeyPath'], stranger);
    });
    const run = await doctor(cfg.path, SLACK_ENV);
    expect(run.line('pi-a ssh login')).toMatch(
      /^✗ pi-a ssh login +authentication failed \(key not accepted\) {2}try: authorize the bot's key on pi-a: ssh-copy-id -i /,
    );
    expect(run.line('pi-a sudo')).toMatch(/not tried: no SSH login$/);
  });

  it('http: the bot running answers /healthz ✓; a 503, or a port held by something else, ✗', async () => {
    const port = await closedLoopbackPort();
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['http', 'port'], port);
    });
    const bot: RunningApp = await startInProcessBot(loadConfig(cfg.path), emulator);
    closers.push(() => bot.stop());
    expect((await doctor(cfg.path, SLACK_ENV)).line('http')).toMatch(
      new RegExp(`^✓ http +the bot is running: http://127\\.0\\.0\\.1:${port}/healthz 200$`),
    );
    // The store the bot holds opens read-only beside it.
    expect((await doctor(cfg.path, SLACK_ENV)).line('store')).toMatch(/^✓ store +.* opens, schema version/);
    await bot.stop();
    closers.pop();

    const sick = await listening(createHttpServer((_req, res) => res.writeHead(503).end('{"ok":false}')));
    cfg.cleanup();
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['http', 'port'], sick);
    });
    expect((await doctor(cfg.path)).line('http')).toMatch(
      /^✗ http +the bot runs but is not healthy: .* 503 \{"ok":false\} {2}try: see its logs/,
    );

    const held = await silentPort();
    cfg.cleanup();
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['http', 'port'], held);
    });
    expect((await doctor(cfg.path)).line('http')).toMatch(
      new RegExp(`^✗ http +port ${held} on 127\\.0\\.0\\.1 is taken by another program`),
    );
  });

  it('progress on a terminal stderr (which checks still run), nothing on stderr otherwise', async () => {
    cfg = await sshNodeConfig(sshd, operatorsFile);
    const tty = await doctor(cfg.path, SLACK_ENV, true);
    expect(tty.stderr).toMatch(
      /okome doctor: 0\/13 done; running: config, environment, slack, pi-a tcp, \+9/,
    );
    expect(tty.stderr).toMatch(/okome doctor: 13\/13 done/);
    expect(tty.stderr.endsWith('\r\x1b[K')).toBe(true);
    const piped = await doctor(cfg.path, SLACK_ENV, false);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).not.toContain(String.fromCharCode(27));
  });

  it('as a process: the report, then a prompt exit (no pooled socket or timer left)', async () => {
    const closed = await closedLoopbackPort();
    cfg = await sshNodeConfig(sshd, (doc) => {
      operatorsFile(doc);
      doc.setIn(['nodes', 0, 'ssh', 'port'], closed);
    });
    const run = await spawnOkome(['doctor', '--config', cfg.path], SLACK_ENV);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^✓ pi-b sudo|^✗ pi-b sudo/m);
    expect(run.stdout).toMatch(/^\d+ of 13 checks passed/m);
    expect(run.lingerMs).toBeLessThan(PROMPT_EXIT_MS);
  });

  it('a configuration that cannot be read: one ✗ config line, exit 2', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => doc.setIn(['thresholds', 'diskPercent'], 'lots'));
    const run = await doctor(cfg.path);
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(
      /^✗ config: .*1 problem\(s\), first thresholds\.diskPercent: .*try: okome config check /,
    );
  });
});
