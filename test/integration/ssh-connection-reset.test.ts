import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { stopAllLaunched } from '../support/launchers/process-utils.js';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * A served bot must survive its SSH connections being reset under it (a Pi rebooting, a switch
 * flapping): an `error` from ssh2 with no listener is an uncaught exception that ends the process.
 */

/** A TCP relay in front of sshd whose live connections can be reset (RST) at will. */
async function startResettingRelay(
  host: string,
  target: { host: string; port: number },
): Promise<{ server: Server; port: number; reset: () => number }> {
  const downstreams = new Set<Socket>();
  const server = createServer((downstream) => {
    const upstream = connect({ host: target.host, port: target.port });
    downstreams.add(downstream);
    const end = (): void => {
      downstreams.delete(downstream);
      downstream.destroy();
      upstream.destroy();
    };
    for (const socket of [downstream, upstream]) socket.on('error', end).on('close', end);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address !== null ? address.port : 0,
    reset: () => {
      const n = downstreams.size;
      for (const socket of [...downstreams]) socket.resetAndDestroy();
      return n;
    },
  };
}

let sshd: SshdServer;
let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let cfg: LoopbackConfig | undefined;
let relay: Awaited<ReturnType<typeof startResettingRelay>> | undefined;

beforeAll(async () => {
  sshd = await startSshd();
});
afterEach(async () => {
  await app?.stop({ graceMs: 1000 });
  await emu?.close();
  await new Promise((resolve) => relay?.server.close(resolve));
  cfg?.cleanup();
  app = emu = cfg = relay = undefined;
});
afterAll(stopAllLaunched);

describe('SSH connections reset mid-exec', () => {
  it('under load: every check settles, nothing is uncaught, the bot stays up and the next status works', async () => {
    // pi-a's address in the loopback config; pi-a's SSH goes through the relay to a real sshd.
    relay = await startResettingRelay('127.0.0.20', { host: sshd.host, port: sshd.port });
    const relayPort = relay.port;
    cfg = await loopbackConfig((doc) => {
      const nodes = doc.nodes as Array<{ name: string; ssh: Record<string, unknown> }>;
      const piA = nodes.find((n) => n.name === 'pi-a');
      if (piA === undefined) throw new Error('the example has no pi-a');
      piA.ssh = {
        ...piA.ssh,
        port: relayPort,
        user: sshd.user,
        privateKeyPath: sshd.clientKeyPath,
        hostKey: sshd.hostKeyFingerprint,
      };
      // Generous deadlines: this test is about surviving resets, not about speed on a loaded machine.
      doc.timeouts = {
        statusMs: 15_000,
        checkMs: 10_000,
        httpMs: 500,
        redisMs: 500,
        sshConnectMs: 5000,
        sshExecMs: 8000,
      };
    });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => {
      uncaught.push(error);
    };
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    try {
      emu = await startSlackEmulator();
      app = await startInProcessBot(cfg.config, emu);
      const diagnostics = app.diagnostics;
      const sshOf = async () =>
        (await diagnostics.run({ kind: 'status' })).checks.find((c) => c.id === 'ssh@pi-a');

      expect((await sshOf())?.status).toBe('ok');
      // Twelve statuses in flight (a dozen SSH execs each on pi-a), connections reset every 25 ms.
      let resets = 0;
      const runs = Promise.allSettled(Array.from({ length: 12 }, () => diagnostics.run({ kind: 'status' })));
      let running = true;
      void runs.then(() => {
        running = false;
      });
      while (running) {
        resets += relay.reset();
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const settled = await runs;
      expect(resets).toBeGreaterThan(0);
      // A reset is a diagnosis result (unreachable, or some commands lost), never a thrown run.
      expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);

      // The next status, through Slack, after the resets: the bot answers and pi-a is reachable again.
      const before = emu.messagesIn('C0OPS').length;
      await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
      await emu.waitFor(
        () =>
          emu
            ?.messagesIn('C0OPS')
            .slice(before)
            .some((m) => m.text.startsWith('OKOME status')),
        20_000,
        'the status report after the resets',
      );
      const ssh = await sshOf();
      expect(ssh?.status).toBe('ok');
      expect(ssh?.summary).toMatch(/^reachable \((\d+)\/\1 commands answered\)/);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
  }, 60_000);
});
