import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres-store.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessReplicas,
} from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * Approvals across replicas (issue 21 point 2): three apps on one PostgreSQL, each with a pool of
 * its own, each with its own Socket Mode connection; the emulator hands each envelope to the next
 * open connection, as Slack spreads them. 50 concurrent Approve clicks on one card, spread over
 * the three, start exactly one run: one transition to running, one execute-step. The full click
 * path: the real Bolt, the approvals service, the store's compare-and-set. The run itself fails
 * at once (pi-b's SSH port is closed): what counts here is how many runs start.
 */

const db = await scratchPostgresDatabase('the approvals replicas test');

let orchestrator: Server | undefined;
let piHttp: Awaited<ReturnType<typeof answeringPiHttp>> | undefined;
let emu: SlackEmulator | undefined;
let cfg: LoopbackConfig | undefined;
let apps: RunningApp[] = [];
let reader: PostgresStore | undefined;
afterEach(async () => {
  for (const app of apps) await app.stop({ graceMs: 1000 });
  apps = [];
  await reader?.close();
  await emu?.close();
  if (orchestrator !== undefined) await new Promise((r) => orchestrator?.close(r));
  await piHttp?.close();
  cfg?.cleanup();
  orchestrator = piHttp = emu = cfg = reader = undefined;
});
afterAll(() => db?.drop());

describe.skipIf(db === undefined)('approvals on three replicas', () => {
  it('50 concurrent Approve clicks spread over three apps start exactly one run', async () => {
    if (db === undefined) return;
    // A healthy orchestrator, so golden rule 1 does not hold the Redis action back.
    const server = createServer((_req, res) => res.writeHead(200).end('ok'));
    orchestrator = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const pi = await answeringPiHttp();
    piHttp = pi;
    const slack = await startSlackEmulator({ spread: 'round-robin' });
    emu = slack;
    const config = await loopbackConfig((doc) => {
      pi.override(doc);
      doc.orchestrator = { baseUrl: `http://127.0.0.1:${port}` };
      doc.store = { kind: 'postgres', replicas: true };
    });
    cfg = config;
    apps = await startInProcessReplicas(config.config, slack, db.url, 3);
    expect(slack.socketConnections).toBe(3);
    const store = await openPostgresStore({ url: db.url, poolSize: 2 });
    reader = store;

    await slack.slash({ userId: 'U0REQUEST', channelId: 'C0OPS', text: 'status' }).ack;
    const card = await slack.waitFor(
      () => {
        for (const m of slack.messagesIn('C0INCIDENT')) {
          if (!m.text.startsWith('Restart redis-server on pi-b: pending')) continue;
          const id = /"value":"(ap_[A-Za-z0-9]+)"/.exec(JSON.stringify(m.blocks))?.[1];
          if (id !== undefined) return { id, ts: m.ts };
        }
        return undefined;
      },
      30_000,
      'a restart-redis card',
    );
    const clicks = Array.from({ length: 50 }, (_, i) =>
      slack.click({
        userId: i % 2 === 0 ? 'U0APPROVER1' : 'U0APPROVER2',
        channelId: 'C0INCIDENT',
        messageTs: card.ts,
        actionId: `okome:approve:${card.id}`,
        value: card.id,
      }),
    );
    await Promise.all(clicks.map((c) => c.ack));
    const audit = async () => (await store.auditSince(0)).filter((e) => e.approvalId === card.id);
    // Every click decided: no run can start after this.
    await slack.waitFor(
      async () => (await audit()).filter((e) => e.event === 'click-approve').length === 50,
      30_000,
      'all 50 clicks decided',
    );
    await slack.waitFor(
      async () => {
        const state = (await store.approvalById(card.id))?.state;
        return state === 'failed' || state === 'succeeded' || state === 'interrupted';
      },
      30_000,
      'the run to end',
    );
    const entries = await audit();
    const runs = entries.filter((e) => e.stateBefore !== 'running' && e.stateAfter === 'running');
    expect(
      runs,
      JSON.stringify(entries.map((e) => `${e.event}:${e.stateBefore}->${e.stateAfter}`)),
    ).toHaveLength(1);
    expect(entries.filter((e) => e.event === 'execute-step')).toHaveLength(1);
  }, 90_000);
});
