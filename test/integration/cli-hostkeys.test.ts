import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

  it('a differing pin: MISMATCH with a warning about a reinstalled Pi or a MITM, exit 5; the file is never touched', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => doc.setIn(['nodes', 0, 'ssh', 'hostKey'], OTHER_KEY));
    const before = cfg.text();
    const modified = statSync(cfg.path).mtimeMs;
    const run = await okome('hostkeys', '--config', cfg.path);
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
    // pi-b still has the example's placeholder: reported, with the line to pin it by hand.
    expect(run.stdout).toMatch(/^pi-b .* not pinned \(the example’s placeholder\)$/m);
    expect(run.stdout).toContain(`        hostKey: ${sshd.hostKeyFingerprint}\n`);
    expect(run.stdout).toMatch(/trust on first use/);
    expect(cfg.text()).toBe(before);
    expect(statSync(cfg.path).mtimeMs).toBe(modified);
  });

  it('unpinned nodes (missing key, placeholder): the line to write, exit 1; the file is never edited', async () => {
    cfg = await sshNodeConfig(sshd, (doc) => doc.deleteIn(['nodes', 0, 'ssh', 'hostKey']));
    const before = cfg.text();
    const modified = statSync(cfg.path).mtimeMs;
    const run = await okome('hostkeys', '--config', cfg.path);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^pi-a .* not pinned$/m);
    expect(run.stdout).toMatch(/^pi-b .* not pinned \(the example’s placeholder\)$/m);
    expect(run.stdout).toMatch(/pin it under nodes\[0\]\.ssh \(okome never edits the file\):/);
    expect(run.stdout.split(`        hostKey: ${sshd.hostKeyFingerprint}\n`)).toHaveLength(3);
    expect(cfg.text()).toBe(before);
    expect(statSync(cfg.path).mtimeMs).toBe(modified);
    // The operator writes the printed line; then every key matches.
    writeFileSync(
      cfg.path,
      before
        .replace(/SHA256:REPLACEwithTHEpinnedKEYofPIb0+/, sshd.hostKeyFingerprint)
        .replace(/( {4}ssh:\n)/, `$1      hostKey: ${sshd.hostKeyFingerprint}\n`),
    );
    const again = await okome('hostkeys', '--config', cfg.path);
    expect(again.code).toBe(0);
    expect(again.stdout.match(/match \(pinned\)/g)).toHaveLength(2);
  });

  it('unreachable nodes: refused at once, a silent peer bounded by timeouts.sshConnectMs; exit 1', async () => {
    const closed = await closedLoopbackPort();
    const silent = await hungPort();
    cfg = await sshNodeConfig(sshd, (doc) => {
      doc.setIn(['nodes', 0, 'ssh', 'port'], closed);
      doc.setIn(['nodes', 1, 'ssh', 'port'], silent);
      doc.setIn(['timeouts', 'sshConnectMs'], 800);
    });
    const before = cfg.text();
    const run = await okome('hostkeys', '--config', cfg.path);
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
