import { Socket } from 'node:net';
import { Client } from 'ssh2';
import { ErrorCode, OkomeError } from '../errors.js';
import { abortError, describeNetworkError } from './deadline.js';
import { type HostKeyKind, hostKeyKind, sshFingerprint } from './host-key.js';

/** The host key a node's sshd proved it holds, as `ssh-keygen -lf` would print it. */
export interface OfferedHostKey extends HostKeyKind {
  /** `SHA256:…` */
  readonly fingerprint: string;
}

export interface ScanTarget {
  readonly address: string;
  readonly port: number;
  /** Sent in no request: ssh2 wants one to start, and the connection is cut before authentication. */
  readonly user: string;
}

/**
 * Connects to a node's sshd, completes the key exchange and hangs up before authenticating: the
 * key okome's pool would verify (the same algorithm preference), and only once the server has
 * signed the exchange with it, so a peer that merely replays a known public key is not believed.
 * No private key is needed, so it works before the bot's key is installed on the node.
 */
export function scanHostKey(
  target: ScanTarget,
  options: { readonly timeoutMs: number; readonly signal?: AbortSignal },
): Promise<OfferedHostKey> {
  const where = `${target.address}:${target.port}`;
  return new Promise<OfferedHostKey>((resolve, reject) => {
    const client = new Client();
    const socket = new Socket();
    let offered: Buffer | undefined;
    let settled = false;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      finish();
    };
    const failed = (reason: string, cause?: unknown): OkomeError =>
      new OkomeError(ErrorCode.SshConnectFailed, `ssh ${where}: ${reason}`, { userSafe: true, cause });
    const onAbort = (): void => settle(() => reject(abortError(options.signal, `ssh ${where}`)));
    const timer = setTimeout(
      () => settle(() => reject(failed(`no key exchange within ${options.timeoutMs} ms`))),
      options.timeoutMs,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    // Errors reach ssh2's listener; these keep late ones (after the hang-up) from being unhandled.
    socket.on('error', () => undefined);
    client.on('error', (error: Error) => settle(() => reject(failed(describeNetworkError(error), error))));
    client.on('close', () => settle(() => reject(failed('connection closed before the key exchange ended'))));
    // Emitted once the server's signature over the exchange verified with the offered key.
    client.on('handshake', () => {
      const blob = offered;
      settle(() =>
        blob === undefined
          ? reject(failed('the server offered no host key'))
          : resolve({ fingerprint: sshFingerprint(blob), ...hostKeyKind(blob) }),
      );
    });
    if (options.signal?.aborted === true) {
      onAbort();
      return;
    }
    socket.connect({ host: target.address, port: target.port });
    try {
      client.connect({
        sock: socket,
        username: target.user,
        readyTimeout: options.timeoutMs,
        hostVerifier: (blob: Buffer): boolean => {
          offered = Buffer.from(blob);
          return true;
        },
      });
    } catch (error) {
      settle(() => reject(failed(error instanceof Error ? error.message : String(error), error)));
    }
  });
}
