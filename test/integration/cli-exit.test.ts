import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';
import { PROMPT_EXIT_MS, spawnOkome } from '../support/spawn-okome.js';

/** The CLI exits promptly once it has printed its report: no reconnect timer keeps it up. */

let cfg: LoopbackConfig | undefined;
let hung: { server: Server; sockets: Set<Socket> } | undefined;
afterEach(async () => {
  cfg?.cleanup();
  if (hung !== undefined) {
    for (const s of hung.sockets) s.destroy();
    const { server } = hung;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  cfg = hung = undefined;
});

/** A port that accepts connections and never says a word (a hung service). */
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

describe('okome exits within 100 ms of its report', () => {
  it('closed ports: status reports and exits', async () => {
    cfg = await loopbackConfig();
    const run = await spawnOkome(['status', '--config', cfg.path]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/Cannot reach the cache layer/);
    expect(run.lingerMs).toBeLessThan(PROMPT_EXIT_MS);
  });

  it('hung ports (accept, never answer): status reports at its deadline and exits', async () => {
    const port = await hungPort();
    cfg = await loopbackConfig((doc) => {
      const nodes = doc.nodes as Array<Record<string, unknown> & { ssh: Record<string, unknown> }>;
      for (const node of nodes) {
        node.address = '127.0.0.1';
        node.httpPort = port;
        node.ssh.port = port;
      }
      doc.vip = { address: '127.0.0.18', httpPort: port };
      doc.orchestrator = { baseUrl: `http://127.0.0.1:${port}` };
      doc.redis = { host: '127.0.0.1', port };
    });
    const run = await spawnOkome(['status', '--config', cfg.path]);
    expect(run.stdout).not.toBe('');
    expect(run.lingerMs).toBeLessThan(PROMPT_EXIT_MS);
  });
});
