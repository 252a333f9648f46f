import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { ManagedDaemon, retryOnAddressInUse } from './process-utils.js';

export interface NginxServer {
  readonly host: string;
  readonly port: number;
  /** The master's PID. */
  readonly pid: number;
  readonly dir: string;
  /** `http://127.0.0.1:PORT` + path. */
  url(path: string): string;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /**
   * Origin for the cached location `/cached/` (e.g. `http://127.0.0.1:4567`); by default
   * nginx's own `/origin/` location, which answers with `Cache-Control: max-age=60`.
   */
  readonly upstream?: string;
  /** More `location` blocks for the server (nginx syntax). */
  readonly locations?: string;
  readonly readyTimeoutMs?: number;
  /** Try this port first; when it is taken, a free one. */
  readonly preferredPort?: number;
}

const HOST = '127.0.0.1';

/** GET over node:http; resolves with the status, or undefined on any error. */
export function httpStatus(url: string, timeoutMs = 1000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode));
      res.once('error', () => resolve(undefined));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(undefined));
    req.end();
  });
}

function nginxConfig(dir: string, port: number, options: NginxOptions): string {
  const origin = options.upstream ?? `http://${HOST}:${port}/origin`;
  // As root the workers drop to nobody: give them a user and group that exist on Debian.
  const user = process.getuid?.() === 0 ? 'user nobody nogroup;' : '';
  return `${user}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 256; }
http {
  default_type text/plain;
  log_format okome '$remote_addr [$time_local] "$request" $status cache=$upstream_cache_status';
  access_log ${dir}/access.log okome;
  client_body_temp_path ${dir}/tmp/client_body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=okome:1m max_size=16m inactive=10m use_temp_path=off;
  server {
    listen ${HOST}:${port};
    location = /healthz { return 200 "ok\\n"; }
    location / {
      add_header X-OKOME-Node test-edge always;
      return 200 "okome test edge\\n";
    }
    location /origin/ {
      add_header Cache-Control "max-age=60" always;
      return 200 "origin $request_uri\\n";
    }
    location /cached/ {
      proxy_pass ${origin}/;
      proxy_cache okome;
      proxy_cache_valid 200 1m;
      add_header X-Cache-Status $upstream_cache_status always;
      add_header X-OKOME-Node test-edge always;
    }
${options.locations ?? ''}
  }
}
`;
}

/** Starts nginx (master + one worker, in the foreground) on a free 127.0.0.1 port in its own directory. */
export async function startNginx(options: NginxOptions = {}): Promise<NginxServer> {
  const dir = await mkdtemp(join(tmpdir(), 'okome-nginx-'));
  // The workers (nobody) must reach the cache and temp paths below it.
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'tmp'));
  const managed = new ManagedDaemon('nginx', dir, join(dir, 'error.log'));
  try {
    const started = await retryOnAddressInUse(async (attempt) => {
      const port =
        attempt === 1 && options.preferredPort !== undefined ? options.preferredPort : await freePort(HOST);
      const conf = join(dir, 'nginx.conf');
      await writeFile(conf, nginxConfig(dir, port, options));
      // -e: the startup error log, before the config's own is opened (default: /var/log/nginx).
      const args = ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'];
      const pid = await managed.start(
        '/usr/sbin/nginx',
        args,
        async () => (await httpStatus(`http://${HOST}:${port}/healthz`)) === 200,
        options.readyTimeoutMs ?? 10_000,
      );
      return { port, pid };
    });
    return {
      host: HOST,
      port: started.port,
      pid: started.pid,
      dir,
      url: (path) => `http://${HOST}:${started.port}${path}`,
      stop: () => managed.stop(),
    };
  } catch (error) {
    await managed.stop();
    throw error;
  }
}
