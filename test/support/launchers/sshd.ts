import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { ManagedDaemon, retryOnAddressInUse, run } from './process-utils.js';

export interface SshdServer {
  readonly host: string;
  readonly port: number;
  /** The listener's PID (changes on restart). */
  readonly pid: number;
  readonly dir: string;
  /** The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:…`. */
  readonly hostKeyFingerprint: string;
  /** An unencrypted ed25519 private key authorized for `user`. */
  readonly clientKeyPath: string;
  readonly user: string;
  /**
   * Kills the listener and every session it forked (existing connections drop), then starts
   * it again on the same port with the same keys.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /**
   * The login user. Default `okome-test`, created if missing: an unprivileged account with
   * /bin/sh, whose commands do not pay for root's ~/.bashrc (pyenv init, ~110 ms each here).
   * When not running as root, the current user (sshd cannot switch to anyone else).
   */
  readonly user?: string;
  /** More sshd_config lines. */
  readonly extraConfig?: string;
  readonly readyTimeoutMs?: number;
  /** Try this port first; when it is taken, a free one. */
  readonly preferredPort?: number;
}

const HOST = '127.0.0.1';
export const TEST_USER = 'okome-test';

let userReady: Promise<void> | undefined;

async function shadowField(user: string): Promise<string | undefined> {
  const shadow = await readFile('/etc/shadow', 'utf8');
  return shadow
    .split('\n')
    .find((line) => line.startsWith(`${user}:`))
    ?.split(':')[1];
}

async function userExists(user: string): Promise<boolean> {
  try {
    await run('getent', ['passwd', user]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates the test user when missing. Its password field must be `*`, not the `!` useradd
 * writes by default: sshd refuses a locked account even with a valid key.
 */
function ensureTestUser(user: string): Promise<void> {
  userReady ??= (async () => {
    if (!(await userExists(user))) {
      try {
        await run('useradd', ['--system', '--create-home', '--shell', '/bin/sh', '--password', '*', user]);
      } catch (error) {
        // Another worker may have created it at the same moment.
        if (!(await userExists(user))) throw error;
      }
    }
    if ((await shadowField(user))?.startsWith('!') === true) await run('usermod', ['--password', '*', user]);
  })();
  return userReady;
}

/** Connects and waits for the server's `SSH-2.0-` identification line. */
function sshBanner(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
    socket.once('data', (chunk) => done(chunk.toString('latin1').startsWith('SSH-2.0-')));
  });
}

/** The fingerprint field of `ssh-keygen -lf FILE` ("256 SHA256:… comment (ED25519)"). */
export async function keyFingerprint(publicKeyPath: string): Promise<string> {
  const out = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyPath]);
  const fingerprint = out.split(' ')[1];
  if (fingerprint === undefined || !fingerprint.startsWith('SHA256:')) {
    throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  }
  return fingerprint;
}

function sshdConfig(dir: string, port: number, user: string, extra: string): string {
  return `ListenAddress ${HOST}:${port}
HostKey ${dir}/ssh_host_ed25519_key
PidFile ${dir}/sshd.pid
AuthorizedKeysFile ${dir}/authorized_keys
AllowUsers ${user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
MaxSessions 10
LogLevel INFO
${extra}
`;
}

/** Starts OpenSSH's sshd (foreground, own host key, own client key) on a free 127.0.0.1 port. */
export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  const isRoot = process.getuid?.() === 0;
  const user = isRoot ? (options.user ?? TEST_USER) : userInfo().username;
  if (isRoot) {
    if (user !== 'root') await ensureTestUser(user);
    // Compiled-in privilege-separation directory; absent until the Debian service first runs.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  }
  const dir = await mkdtemp(join(tmpdir(), 'okome-sshd-'));
  const managed = new ManagedDaemon('sshd', dir, join(dir, 'sshd.log'));
  try {
    // sshd reads authorized_keys as the login user: the directory and file must be readable by it.
    await chmod(dir, 0o755);
    const hostKey = join(dir, 'ssh_host_ed25519_key');
    const clientKeyPath = join(dir, 'client_ed25519');
    await Promise.all([
      run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'okome-test-host', '-f', hostKey]),
      run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'okome-test-client', '-f', clientKeyPath]),
    ]);
    const authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, await readFile(`${clientKeyPath}.pub`));
    await chmod(authorizedKeys, 0o644);
    const hostKeyFingerprint = await keyFingerprint(`${hostKey}.pub`);
    const conf = join(dir, 'sshd_config');
    const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;

    const startOn = async (port: number): Promise<number> => {
      await writeFile(conf, sshdConfig(dir, port, user, options.extraConfig ?? ''));
      return managed.start('/usr/sbin/sshd', ['-D', '-e', '-f', conf], () => sshBanner(port), readyTimeoutMs);
    };
    const started = await retryOnAddressInUse(async (attempt) => {
      const port =
        attempt === 1 && options.preferredPort !== undefined ? options.preferredPort : await freePort(HOST);
      return { port, pid: await startOn(port) };
    });
    let pid = started.pid;
    return {
      host: HOST,
      port: started.port,
      get pid() {
        return pid;
      },
      dir,
      hostKeyFingerprint,
      clientKeyPath,
      user,
      restart: async () => {
        await managed.kill();
        pid = await startOn(started.port);
      },
      stop: () => managed.stop(),
    };
  } catch (error) {
    await managed.stop();
    throw error;
  }
}
