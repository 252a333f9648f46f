import { startNginx } from './nginx.js';
import { startRedisServer } from './redis-server.js';
import { startSshd } from './sshd.js';

/**
 * Run as a child process by launchers.test.ts: starts one server of each kind, reports their
 * PIDs and directories on stdout, then ends without calling stop(): by crashing (`crash`, on a
 * line from stdin) or by a signal (`wait`). The registry's hooks must leave nothing behind.
 */
const mode = process.argv[2];
const servers = await Promise.all([startRedisServer(), startNginx(), startSshd()]);
process.stdout.write(`${JSON.stringify(servers.map((s) => ({ pid: s.pid, dir: s.dir })))}\n`);
process.stdin.once('data', () => {
  if (mode === 'crash') throw new Error('simulated crash of a test worker');
});
