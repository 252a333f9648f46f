import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { hostKeyKind, sshFingerprint } from '../../src/probes/host-key.js';
import { scanHostKey } from '../../src/probes/host-key-scan.js';
import { keyFingerprint, type SshdServer, startSshd } from '../support/launchers/sshd.js';
import { closedLoopbackPort, type SshNodeConfig, sshNodeConfig } from '../support/ssh-node-config.js';

/** `okome hostkeys` against a real OpenSSH sshd on 127.0.0.1: what it proves, prints and pins. */

let sshd: SshdServer;
let cfg: SshNodeConfig | undefined;
let hung: { server: Server; sockets: Set<Socket> } | undefined;
const OTHER_KEY = `SHA256:${'Q'.repeat(43)}`;

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});
afterEach(async () => {
  cfg?.cleanup();
  cfg = undefined;
  if (hung !== undefined) {
    for (const s of hung.sockets) s.destroy();
    const { server } = hung;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    hung = undefined;
  }
});

async function okome(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const started = performance.now();
  const code = await runCli(argv, {
    env: {},
    cwd: '/',
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
  });
  return { code, stdout: out.join(''), stderr: err.join(''), ms: performance.now() - started };
}

/** The lines of two texts that differ, position by position (same line count expected). */
function changedLines(before: string, after: string): Array<[string, string]> {
  const a = before.split('\n');
  const b = after.split('\n');
  expect(b.length).toBe(a.length);
  return a.flatMap((line, i) => (line === b[i] ? [] : ([[line, b[i] ?? '']] as Array<[string, string]>)));
}

async function hungPort(): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hung = { server, sockets };
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

describe('scanHostKey', () => {
  it('returns the key sshd proved, as ssh-keygen -lf prints it, without authenticating', async () => {
    const offered = await scanHostKey(
      { address: sshd.host, port: sshd.port, user: 'nobody-at-all' },
      { timeoutMs: 3000 },
    );
    expect(offered).toEqual({ fingerprint: sshd.hostKeyFingerprint, type: 'ED25519', bits: 256 });
  });

  it('key type and size match ssh-keygen -lf for RSA and ECDSA keys too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'okome-keykind-'));
    try {
      for (const [type, bits] of [
        ['rsa', '3072'],
        ['ecdsa', '384'],
        ['ed25519', ''],
      ] as const) {
        const file = join(dir, type);
        execFileSync('ssh-keygen', [
          '-q',
          '-t',
          type,
          ...(bits === '' ? [] : ['-b', bits]),
          '-N',
          '',
          '-f',
          file,
        ]);
        const listed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], {
          encoding: 'utf8',
        });
        const [size, fingerprint, , kind] = listed.trim().replace(/\(|\)/g, '').split(' ');
        const blob = Buffer.from(readFileSync(`${file}.pub`, 'utf8').split(' ')[1] ?? '', 'base64');
        expect(sshFingerprint(blob)).toBe(fingerprint);
        expect(hostKeyKind(blob)).toEqual({ type: kind, bits: Number(size) });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('okome hostkeys', () => {
  it('a matching pin: the fingerprint ssh-keygen -lf prints, "match", exit 0', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => {
      doc.setIn(['nodes', 0, 'ssh', 'hostKey'], sshd.hostKeyFingerprint);
      doc.setIn(['nodes', 1, 'ssh', 'hostKey'], sshd.hostKeyFingerprint);
    });
    const expected = await keyFingerprint(join(sshd.dir, 'ssh_host_ed25519_key.pub'));
    const run = await okome('hostkeys', '--config', cfg.path);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^pi-a  127\\.0\\.0\\.1:${sshd.port}  ED25519 256 ${expected.replace(/[+/]/g, '\\$&')}  match \\(pinned\\)$`,
        'm',
      ),
    );
    expect(run.stdout).toMatch(/^pi-b .* match \(pinned\)$/m);
  });

  it('a differing pin: MISMATCH with a warning about a reinstalled Pi or a MITM, exit 5; --write changes nothing', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => doc.setIn(['nodes', 0, 'ssh', 'hostKey'], OTHER_KEY));
    const before = cfg.text();
    const modified = statSync(cfg.path).mtimeMs;
    for (const args of [[], ['--write']]) {
      const run = await okome('hostkeys', '--config', cfg.path, ...args);
      expect(run.code).toBe(5);
      expect(run.stdout).toMatch(
        new RegExp(
          `^pi-a .* ${sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}  MISMATCH: pinned ${OTHER_KEY}$`,
          'm',
        ),
      );
      expect(run.stderr).toMatch(/WARNING: pi-a .* different host key/);
      expect(run.stderr).toMatch(/reinstalled/);
      expect(run.stderr).toMatch(/man in the middle/);
      // pi-b still has the example's placeholder: reported, with the line to pin it…
      expect(run.stdout).toMatch(/^pi-b .* not pinned \(the example’s placeholder\)$/m);
      expect(run.stdout).toContain(`        hostKey: ${sshd.hostKeyFingerprint}\n`);
      expect(run.stdout).toMatch(/trust on first use/);
      if (args.length > 0) expect(run.stderr).toMatch(/nothing written: a node's key differs from its pin/);
    }
    // …but never written while another node's key differs.
    expect(cfg.text()).toBe(before);
    expect(statSync(cfg.path).mtimeMs).toBe(modified);
  });

  it('--write pins only the unpinned (missing key, placeholder), says trust on first use, keeps every other line and comment', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => doc.deleteIn(['nodes', 0, 'ssh', 'hostKey']));
    const before = cfg.text();
    expect(before).not.toMatch(/^ {6}hostKey:.*\n {4}services: \[ nginx, keepalived \]/m);
    const plain = await okome('hostkeys', '--config', cfg.path);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(/^pi-a .* not pinned$/m);
    expect(cfg.text()).toBe(before);

    const run = await okome('hostkeys', '--config', cfg.path, '--write');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `pinned pi-a: nodes[0].ssh.hostKey ${sshd.hostKeyFingerprint} (trust on first use)`,
    );
    expect(run.stdout).toContain(
      `pinned pi-b: nodes[1].ssh.hostKey ${sshd.hostKeyFingerprint} (trust on first use)`,
    );
    const after = cfg.text();
    // pi-a's key is a new line in its ssh: block, pi-b's placeholder is replaced in place (its comment-free line).
    const a = before.split('\n');
    const b = after.split('\n');
    expect(b.length).toBe(a.length + 1);
    const inserted = b.findIndex((line, i) => line !== a[i]);
    expect(b[inserted]).toBe(`      hostKey: ${sshd.hostKeyFingerprint}`);
    expect(changedLines(before, [...b.slice(0, inserted), ...b.slice(inserted + 1)].join('\n'))).toEqual([
      [
        '      hostKey: SHA256:REPLACEwithTHEpinnedKEYofPIb000000000000000',
        `      hostKey: ${sshd.hostKeyFingerprint}`,
      ],
    ]);
    for (const comment of before.split('\n').filter((l) => l.includes('#'))) expect(after).toContain(comment);

    // Pinned now: a second run matches and a second --write changes nothing.
    const again = await okome('hostkeys', '--config', cfg.path, '--write');
    expect(again.code).toBe(0);
    expect(again.stdout.match(/match \(pinned\)/g)).toHaveLength(2);
    expect(again.stdout).not.toMatch(/^pinned /m);
    expect(cfg.text()).toBe(after);
  });

  it('a placeholder with its trailing comment: the value is replaced, the comment stays', async () => {
    cfg = await sshNodeConfig(sshd);
    const line = cfg
      .text()
      .split('\n')
      .find((l) => l.includes('REPLACEwithTHEpinnedKEYofPIa'));
    expect(line).toMatch(/ # okome hostkeys --write .*ssh-keygen -lf/);
    const run = await okome('hostkeys', '--config', cfg.path, '--write', '--node', 'pi-a');
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(/^pi-b/m);
    expect(cfg.text()).toContain(line?.replace(/SHA256:REPLACE\w+/, sshd.hostKeyFingerprint));
    expect(cfg.text()).toContain('REPLACEwithTHEpinnedKEYofPIb');
  });

  it('--write through a symlink edits its target, keeping the mode; the link stays a link', async () => {
    cfg = await sshNodeConfig(sshd);
    chmodSync(cfg.path, 0o640);
    const link = join(cfg.dir, 'current.yml');
    symlinkSync(cfg.path, link);
    const run = await okome('hostkeys', '--config', link, '--write');
    expect(run.code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(statSync(cfg.path).mode & 0o777).toBe(0o640);
    expect(cfg.text()).not.toContain('REPLACE');
    expect(readdirSync(cfg.dir).filter((f) => f.includes('okome-hostkeys'))).toEqual([]);
  });

  it('unreachable nodes: refused at once, a silent peer bounded by timeouts.sshConnectMs; exit 1, nothing written', async () => {
    const closed = await closedLoopbackPort();
    const silent = await hungPort();
    cfg = await sshNodeConfig(sshd, (doc) => {
      doc.setIn(['nodes', 0, 'ssh', 'port'], closed);
      doc.setIn(['nodes', 1, 'ssh', 'port'], silent);
      doc.setIn(['timeouts', 'sshConnectMs'], 800);
    });
    const before = cfg.text();
    const run = await okome('hostkeys', '--config', cfg.path, '--write');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^pi-a .* unreachable: connection refused$/m);
    expect(run.stdout).toMatch(/^pi-b .* unreachable: no key exchange within 800 ms$/m);
    expect(run.ms).toBeLessThan(3000);
    expect(cfg.text()).toBe(before);
  });

  it('--node names an unknown node: exit 2 with a suggestion', async () => {
    cfg = await sshNodeConfig(sshd);
    const run = await okome('hostkeys', '--config', cfg.path, '--node', 'pi-c');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no node "pi-c".*Did you mean "pi-a"\?/s);
  });

  it('another configuration problem is still one (exit 2), with the keys named', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => doc.setIn(['thresholds', 'diskPercent'], 'lots'));
    const run = await okome('hostkeys', '--config', cfg.path);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/thresholds\.diskPercent/);
  });
});
