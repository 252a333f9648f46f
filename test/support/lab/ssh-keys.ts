import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { runOk } from './process-runner.js';

export interface KeyPair {
  readonly privatePath: string;
  readonly publicPath: string;
  /** The public key line, e.g. `ssh-ed25519 AAAA… comment`. */
  readonly publicLine: string;
  /** OpenSSH's SHA256 fingerprint, as pinned in the bot config. */
  readonly fingerprint: string;
}

/** OpenSSH's `SHA256:` fingerprint: unpadded base64 of the SHA-256 of the key blob. */
export function fingerprintOf(publicLine: string): string {
  const blob = publicLine.trim().split(/\s+/)[1];
  if (blob === undefined) throw new Error(`not an OpenSSH public key line: ${publicLine.slice(0, 40)}`);
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}

/** Generates an unencrypted ed25519 key pair with ssh-keygen at `privatePath`. */
export async function generateKeyPair(privatePath: string, comment: string): Promise<KeyPair> {
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', privatePath]);
  return readKeyPair(privatePath);
}

export async function readKeyPair(privatePath: string): Promise<KeyPair> {
  const publicPath = `${privatePath}.pub`;
  const publicLine = (await readFile(publicPath, 'utf8')).trim();
  return { privatePath, publicPath, publicLine, fingerprint: fingerprintOf(publicLine) };
}

/** A known_hosts line pinning `publicLine` for `address`. */
export function knownHostsLine(address: string, publicLine: string): string {
  const [type, blob] = publicLine.trim().split(/\s+/);
  return `${address} ${type ?? ''} ${blob ?? ''}`;
}
