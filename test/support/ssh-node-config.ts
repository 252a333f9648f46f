import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Document, parseDocument } from 'yaml';
import type { SshdServer } from './launchers/sshd.js';

const EXAMPLE = join(import.meta.dirname, '../../config/okome.example.yml');

export interface SshNodeConfig {
  readonly dir: string;
  readonly path: string;
  readonly text: () => string;
  cleanup(): void;
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 1;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The shipped example with its comments, both Pis pointed at a real sshd on 127.0.0.1 (its user
 * and client key) and everything else at closed loopback ports: the operator's file, made safe
 * to run here. `edit` changes the Document before it is written. Refuses to write a file that
 * still names the real cache layer's 192.168.86.x addresses.
 */
export async function sshNodeConfig(
  sshd: SshdServer,
  edit: (doc: Document) => void = () => {},
): Promise<SshNodeConfig> {
  const closed = await closedLoopbackPort();
  const doc = parseDocument(readFileSync(EXAMPLE, 'utf8'));
  for (const i of [0, 1]) {
    doc.setIn(['nodes', i, 'address'], sshd.host);
    doc.setIn(['nodes', i, 'httpPort'], closed);
    doc.setIn(['nodes', i, 'ssh', 'port'], sshd.port);
    doc.setIn(['nodes', i, 'ssh', 'user'], sshd.user);
    doc.setIn(['nodes', i, 'ssh', 'privateKeyPath'], sshd.clientKeyPath);
  }
  doc.setIn(['vip', 'address'], '127.0.0.18');
  doc.setIn(['vip', 'httpPort'], closed);
  doc.setIn(['orchestrator', 'baseUrl'], `http://127.0.0.25:${closed}`);
  doc.setIn(['orchestrator', 'gpuHost'], '127.0.0.30');
  doc.setIn(['redis', 'host'], '127.0.0.19');
  doc.setIn(['redis', 'port'], closed);
  const dir = mkdtempSync(join(tmpdir(), 'okome-ssh-config-'));
  doc.setIn(['store', 'path'], join(dir, 'okome.db'));
  doc.setIn(['http', 'port'], closed);
  doc.setIn(['http', 'host'], '127.0.0.1');
  doc.setIn(['timeouts', 'sshConnectMs'], 1500);
  doc.setIn(['timeouts', 'sshExecMs'], 3000);
  edit(doc);
  const text = doc.toString();
  if (text.includes('192.168.86.')) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error('a test configuration still names a 192.168.86.x address: refused (network safety)');
  }
  const path = join(dir, 'okome.yml');
  writeFileSync(path, text);
  return {
    dir,
    path,
    text: () => readFileSync(path, 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
