import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';
import {
  isProcessAlive,
  ManagedDaemon,
  processTree,
  retryOnAddressInUse,
  waitGone,
} from './process-utils.js';

/**
 * A PostgreSQL cluster of a test's own (Debian's initdb and postgres, run as the `postgres`
 * user through setpriv, which execs rather than forks so the PID is the postmaster's), on a
 * free 127.0.0.1 port, for tests that restart or kill the server: the machine's own PostgreSQL
 * is never touched. fsync is off: nothing here must survive a power cut.
 */
export interface PostgresCluster {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /**
   * Fast shutdown (SIGINT: clients are cut, as in a restart by an operator), then a start on the
   * same port; `downMs` keeps it down that long first (an outage longer than a lease).
   */
  restart(options?: { downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Debian's PostgreSQL binaries, or undefined when the server package is missing. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root).sort().at(-1);
  const dir = version === undefined ? undefined : join(root, version, 'bin');
  return dir !== undefined && existsSync(join(dir, 'initdb')) ? dir : undefined;
}

async function accepts(port: number): Promise<boolean> {
  const client = new pg.Client({
    host: HOST,
    port,
    user: 'postgres',
    database: 'postgres',
    connectionTimeoutMillis: 1000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function startPostgresCluster(
  options: { readyTimeoutMs?: number } = {},
): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if (bin === undefined)
    throw new Error('Debian PostgreSQL server binaries (initdb) not found under /usr/lib/postgresql');
  const dir = await mkdtemp(join(tmpdir(), 'okome-postgres-'));
  const managed = new ManagedDaemon('postgres', dir, join(dir, 'postgres.log'));
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  const asPostgres = ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--'];
  const data = join(dir, 'data');
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  try {
    chownSync(dir, uid, gid);
    execFileSync(
      'setpriv',
      [
        ...asPostgres,
        join(bin, 'initdb'),
        '-D',
        data,
        '-U',
        'postgres',
        '-A',
        'trust',
        '--no-sync',
        '-E',
        'UTF8',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' } },
    );
    const startOn = (port: number) =>
      managed.start(
        'setpriv',
        [
          ...asPostgres,
          join(bin, 'postgres'),
          '-D',
          data,
          '-p',
          String(port),
          '-h',
          HOST,
          '-k',
          dir,
          '-c',
          'fsync=off',
          '-c',
          'full_page_writes=off',
          '-c',
          'synchronous_commit=off',
        ],
        () => accepts(port),
        readyTimeoutMs,
      );
    const port = await retryOnAddressInUse(async () => {
      const candidate = await freePort(HOST);
      await startOn(candidate);
      return candidate;
    });
    return {
      url: `postgres://postgres@${HOST}:${port}/postgres`,
      port,
      dir,
      async restart(restartOptions = {}) {
        const pid = managed.pid;
        if (pid !== undefined) {
          const tree = processTree(pid).filter(isProcessAlive);
          process.kill(pid, 'SIGINT');
          if (!(await waitGone(tree, 10_000))) throw new Error('postgres did not stop within 10 s of SIGINT');
          await managed.kill();
        }
        const downMs = restartOptions.downMs ?? 0;
        if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
        await startOn(port);
      },
      stop: () => managed.stop(),
    };
  } catch (error) {
    await managed.stop();
    throw error;
  }
}
