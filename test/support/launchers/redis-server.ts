import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { ManagedDaemon, retryOnAddressInUse } from './process-utils.js';

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  readonly password: string | undefined;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Sets `requirepass`. */
  readonly password?: string;
  readonly readyTimeoutMs?: number;
  /** Try this port first; when it is taken, a free one. */
  readonly preferredPort?: number;
}

const HOST = '127.0.0.1';

/** Sends PING (after AUTH when a password is set) over a raw socket; true on +PONG. */
export function redisPing(port: number, password?: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
    socket.once('connect', () => {
      const auth = password === undefined ? '' : `AUTH ${password}\r\n`;
      socket.write(`${auth}PING\r\n`);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('+PONG\r\n')) done(true);
      else if (reply.startsWith('-') && reply.includes('\r\n')) done(false);
    });
  });
}

/** Starts a throw-away redis-server (no persistence) on a free 127.0.0.1 port in its own directory. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'okome-redis-'));
  const managed = new ManagedDaemon('redis-server', dir, join(dir, 'redis.log'));
  try {
    const started = await retryOnAddressInUse(async (attempt) => {
      const port =
        attempt === 1 && options.preferredPort !== undefined ? options.preferredPort : await freePort(HOST);
      const args = [
        '--port',
        String(port),
        '--bind',
        HOST,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--daemonize',
        'no',
        ...(options.password === undefined ? [] : ['--requirepass', options.password]),
      ];
      const pid = await managed.start(
        '/usr/bin/redis-server',
        args,
        () => redisPing(port, options.password),
        options.readyTimeoutMs ?? 10_000,
      );
      return { port, pid };
    });
    return {
      host: HOST,
      port: started.port,
      pid: started.pid,
      dir,
      password: options.password,
      stop: () => managed.stop(),
    };
  } catch (error) {
    await managed.stop();
    throw error;
  }
}
