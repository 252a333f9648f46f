import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';
import { closedLoopbackPort } from '../support/ssh-node-config.js';

/**
 * Issue 17: the README's operator path, followed from a fresh clone to a served bot. Every block
 * the README marks `<!-- runnable … -->` runs, in order, in a clone of this repository's HEAD;
 * the configuration is edited only at the keys the README's table names (here pointed at a real
 * sshd on loopback and the Slack emulator), and the run is refused while the file still names a
 * 192.168.86.x address. The clone reuses this checkout's installed Node and node_modules (`npm
 * ci` is what CI ran moments ago; the block's `npm ci` line is the one line not run here).
 */

const ROOT = resolve(import.meta.dirname, '../..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

interface Block {
  readonly marker: string;
  readonly lines: readonly string[];
}

/** The runnable blocks of the README's "From a clone to a served bot", in order. */
function runnableBlocks(): Block[] {
  const start = README.indexOf('### From a clone to a served bot');
  const section = README.slice(start, README.indexOf('\n## ', start));
  return [...section.matchAll(/<!-- runnable(?::\s*([^>]*?))?\s*-->\n```sh\n([\s\S]*?)```/g)].map((m) => ({
    marker: (m[1] ?? '').trim(),
    lines: (m[2] ?? '').split('\n').filter((l) => l.trim() !== ''),
  }));
}

/** The keys the README's table says to edit. */
function readmeKeys(): string[] {
  const start = README.indexOf('| Key | Set it to |');
  const table = README.slice(start, README.indexOf('\n\n', start));
  return [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? '');
}

let sshd: SshdServer;
let emu: SlackEmulator;
let dir: string;
let clone: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  emu = await startSlackEmulator();
  dir = mkdtempSync(join(tmpdir(), 'okome-readme-path-'));
  clone = join(dir, 'okome-bot');
  execFileSync('git', ['clone', '-q', '--no-hardlinks', ROOT, clone]);
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
  if (existsSync(join(ROOT, '.node'))) symlinkSync(join(ROOT, '.node'), join(clone, '.node'));
}, 60_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await emu?.close();
  await sshd?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("the README's path from a clone to a served bot", () => {
  it('runs every runnable block in order; the bot serves and answers /okome status', async () => {
    const blocks = runnableBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    expect(blocks.at(-1)?.marker).toBe('serves');
    const env = {
      ...Object.fromEntries(
        Object.entries(process.env).filter(([k]) => !k.startsWith('OKOME_') && !k.startsWith('SLACK_')),
      ),
      NO_COLOR: '1',
      SLACK_BOT_TOKEN: 'xoxb-1-2-readmepath',
      SLACK_APP_TOKEN: 'xapp-1-A0README-1-abcdef',
      SLACK_API_URL: emu.apiUrl,
    };
    const run = (lines: readonly string[]) =>
      spawnSync('bash', ['-euo', 'pipefail', '-c', lines.join('\n')], {
        cwd: clone,
        env,
        encoding: 'utf8',
        timeout: 180_000,
      });

    // 1. Install, build, copy the example (npm ci: see above).
    const [install, hostkeys, check, serve] = blocks;
    const setup = run((install?.lines ?? []).filter((l) => !/^npm ci\b/.test(l.trim())));
    expect(setup.status, setup.stderr).toBe(0);
    expect(existsSync(join(clone, 'dist/cli/okome.js'))).toBe(true);

    // 2. The edits the README's table names, and only those.
    const keys = readmeKeys();
    const closed = await closedLoopbackPort();
    const values: Record<string, (doc: ReturnType<typeof parseDocument>) => void> = {
      'nodes[].address': (d) => {
        for (const i of [0, 1]) d.setIn(['nodes', i, 'address'], sshd.host);
      },
      'nodes[].ssh.user': (d) => {
        for (const i of [0, 1]) d.setIn(['nodes', i, 'ssh', 'user'], sshd.user);
      },
      'nodes[].ssh.privateKeyPath': (d) => {
        for (const i of [0, 1]) d.setIn(['nodes', i, 'ssh', 'privateKeyPath'], sshd.clientKeyPath);
      },
      'vip.address': (d) => d.setIn(['vip', 'address'], '127.0.0.18'),
      'orchestrator.baseUrl': (d) => d.setIn(['orchestrator', 'baseUrl'], `http://127.0.0.25:${closed}`),
      'orchestrator.gpuHost': (d) => d.setIn(['orchestrator', 'gpuHost'], '127.0.0.30'),
      'redis.host': (d) => d.setIn(['redis', 'host'], '127.0.0.19'),
      'slack.incidentChannel': (d) => d.setIn(['slack', 'incidentChannel'], 'C0README01'),
      'slack.allowedChannels': (d) => d.setIn(['slack', 'allowedChannels'], ['C0README01']),
      'slack.approvers': (d) => {
        d.setIn(['slack', 'approvers', 'users'], ['U0README01']);
        d.setIn(['slack', 'approvers', 'groups'], []);
      },
      'store.path': (d) => d.setIn(['store', 'path'], join(dir, 'okome.db')),
      // The example's ports are the Pis' and the bot's own defaults: here the sshd's port and closed
      // loopback ports (this machine's Redis on 6379 must not be touched).
      'nodes[].ssh.port': (d) => {
        for (const i of [0, 1]) d.setIn(['nodes', i, 'ssh', 'port'], sshd.port);
      },
      'nodes[].httpPort': (d) => d.setIn(['nodes', 0, 'httpPort'], closed),
      'vip.httpPort': (d) => d.setIn(['vip', 'httpPort'], closed),
      'redis.port': (d) => d.setIn(['redis', 'port'], closed),
      'http.port': (d) => d.setIn(['http', 'port'], closed),
    };
    expect(keys.sort()).toEqual(Object.keys(values).sort());
    const configPath = join(clone, 'okome.yml');
    const doc = parseDocument(readFileSync(configPath, 'utf8'));
    for (const key of keys) values[key]?.(doc);
    const text = doc.toString();
    // Network safety: nothing runs while the file names the real cache layer.
    expect(text).not.toMatch(/192\.168\.86\./);
    writeFileSync(configPath, text);

    // 3. hostkeys: not pinned yet (exit 1), the line to write printed; the operator writes it.
    expect(hostkeys?.marker).toMatch(/^exits 1/);
    const scan = run(hostkeys?.lines ?? []);
    expect(scan.status, scan.stderr).toBe(1);
    const printed = [...scan.stdout.matchAll(/^ {8}hostKey: (SHA256:\S+)$/gm)].map((m) => m[1]);
    expect(printed).toEqual([sshd.hostKeyFingerprint, sshd.hostKeyFingerprint]);
    const pinned = parseDocument(readFileSync(configPath, 'utf8'));
    for (const i of [0, 1]) pinned.setIn(['nodes', i, 'ssh', 'hostKey'], printed[i]);
    writeFileSync(configPath, pinned.toString());

    // 4. The configuration checks out on this host (tokens in the environment).
    const checked = run(check?.lines ?? []);
    expect(checked.status, `${checked.stdout}\n${checked.stderr}`).toBe(0);

    // 5. Served: Socket Mode against the local Slack; /okome status is answered.
    const child = spawn('bash', ['-euo', 'pipefail', '-c', (serve?.lines ?? []).join('\n')], {
      cwd: clone,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await emu
        .waitFor(
          () => out.includes('okome serving (Socket Mode)') || child.exitCode !== null || undefined,
          60_000,
          'serving',
        )
        .catch((error: unknown) => {
          throw new Error(`not serving: ${String(error)}\n${out}`);
        });
      expect(child.exitCode, out).toBeNull();
      await emu.waitForSocket(10_000);
      const { ack } = emu.slash({ userId: 'U0README01', channelId: 'C0README01', text: 'status' });
      await ack;
      const posted = await emu.waitFor(
        () => emu.messagesIn('C0README01').find((m) => /OKOME status|Cannot reach|incident/i.test(m.text)),
        30_000,
        'a status in the incident channel',
      );
      expect(posted.text.length).toBeGreaterThan(0);
    } finally {
      // npm start → node: the whole process group, as Ctrl-C in a terminal would.
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGINT');
      await new Promise<void>((done) =>
        child.exitCode !== null ? done() : child.once('exit', () => done()),
      );
    }
  }, 240_000);
});
