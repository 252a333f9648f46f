import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import type { Approval } from '../../src/domain/approval.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessBot,
} from '../support/bot-harness.js';
import { type FaultyStore, faultyStore } from '../support/faulty-store.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * Issue 16 point 3: an approval's run always ends on record. A store failure mid-run (a failing
 * audit write) still finishes it; a finish the store cannot take is ended by the stuck-run sweep,
 * in the thread and the audit; meanwhile a new diagnosis offers the action again.
 */

interface Bot {
  orchestrator: Server;
  piHttp: Awaited<ReturnType<typeof answeringPiHttp>>;
  emu: SlackEmulator;
  cfg: LoopbackConfig;
  real: SqliteStore;
  faulty: FaultyStore;
  app: RunningApp;
}
let bot: Bot | undefined;

async function startBot(): Promise<Bot> {
  // A healthy orchestrator, so golden rule 1 does not hold the Redis action back; pi-b answers
  // HTTP so there is a Pi to act on. Its SSH port is closed: the restart step fails at once.
  const orchestrator = createServer((_req, res) => res.writeHead(200).end('ok'));
  await new Promise<void>((r) => orchestrator.listen(0, '127.0.0.1', r));
  const port = (orchestrator.address() as AddressInfo).port;
  const emu = await startSlackEmulator();
  const piHttp = await answeringPiHttp();
  const cfg = await loopbackConfig((doc) => {
    piHttp.override(doc);
    doc.orchestrator = { baseUrl: `http://127.0.0.1:${port}` };
  });
  const real = openSqliteStore({ path: cfg.config.store.path });
  const faulty = faultyStore(real);
  const app = await startInProcessBot(cfg.config, emu, { store: faulty.store });
  bot = { orchestrator, piHttp, emu, cfg, real, faulty, app };
  return bot;
}

afterEach(async () => {
  if (bot === undefined) return;
  const b = bot;
  bot = undefined;
  await b.app.stop({ graceMs: 1000 });
  await b.emu.close();
  await new Promise((r) => b.orchestrator.close(r));
  await b.piHttp.close();
  b.cfg.cleanup();
});

/** `/okome status`, then the restart-redis card with this id not among `except`. */
async function offeredCard(b: Bot, except: readonly string[] = []): Promise<{ id: string; ts: string }> {
  await b.emu.slash({ userId: 'U0REQUEST', channelId: 'C0OPS', text: 'status' }).ack;
  return b.emu.waitFor(
    () => {
      for (const m of b.emu.messagesIn('C0INCIDENT')) {
        if (!m.text.startsWith('Restart redis-server on pi-b: pending')) continue;
        const id = /"value":"(ap_[A-Za-z0-9]+)"/.exec(JSON.stringify(m.blocks))?.[1];
        if (id !== undefined && !except.includes(id)) return { id, ts: m.ts };
      }
      return undefined;
    },
    20_000,
    'a restart-redis card',
  );
}

async function approve(b: Bot, card: { id: string; ts: string }): Promise<void> {
  await b.emu.click({
    userId: 'U0APPROVER1',
    channelId: 'C0INCIDENT',
    messageTs: card.ts,
    actionId: `okome:approve:${card.id}`,
    value: card.id,
  }).ack;
}

const approvalState = async (b: Bot, id: string): Promise<Approval['state'] | undefined> =>
  (await b.real.approvalById(id))?.state;

async function auditEvents(b: Bot, id: string): Promise<string[]> {
  return (await b.real.auditSince(0)).filter((e) => e.approvalId === id).map((e) => `${e.event}:${e.code}`);
}

describe('an approval run always ends on record', () => {
  it('a failing audit write mid-run: the run still finishes, in the store, the audit and the timeline', async () => {
    const b = await startBot();
    let failed = 0;
    b.faulty.setFailWhen((call) => {
      const entry = call.args[0] as { event?: string } | undefined;
      if (call.method !== 'appendAudit' || entry?.event !== 'execute-step' || failed > 0) return false;
      failed += 1;
      return true;
    });
    const card = await offeredCard(b);
    await approve(b, card);
    const state = await b.emu.waitFor(
      async () => {
        const s = await approvalState(b, card.id);
        return s === 'failed' || s === 'succeeded' ? s : undefined;
      },
      20_000,
      'the approval to finish (not stay running)',
    );
    expect(failed).toBe(1);
    expect(state).toBe('failed');
    expect(await auditEvents(b, card.id)).toContain('finish:failed');
    const incident = (await b.real.approvalById(card.id))?.incidentId ?? 0;
    const outcome = (await b.real.timeline(incident)).find((e) => e.kind === 'outcome');
    expect(outcome?.text).toMatch(/^Failed: .*the record of the run is incomplete/);
  }, 60_000);

  it('a finish the store refuses: a new offer is not blocked; the sweep ends the run in the thread and the audit', async () => {
    const b = await startBot();
    // Every attempt to write the run's end fails, as a full disk would.
    b.faulty.setFailWhen((call) => {
      const next = call.args[0] as { state?: string } | undefined;
      return (
        call.method === 'compareAndSetApproval' && (next?.state === 'failed' || next?.state === 'succeeded')
      );
    });
    const card = await offeredCard(b);
    await approve(b, card);
    await b.emu.waitFor(
      () => b.faulty.failures.filter((f) => f.method === 'compareAndSetApproval').length >= 4,
      20_000,
      'the finish to be refused on every attempt',
    );
    expect(await approvalState(b, card.id)).toBe('running');
    // Meanwhile a diagnosis offers the action again: the dead run blocks nothing.
    const again = await offeredCard(b, [card.id]);
    expect(again.id).not.toBe(card.id);
    // The store works again: the periodic sweep ends the stuck run, visibly.
    b.faulty.setFailWhen(() => false);
    await b.emu.waitFor(
      async () => (await approvalState(b, card.id)) === 'interrupted',
      40_000,
      'the sweep to end the stuck run',
    );
    expect(await auditEvents(b, card.id)).toContain('stuck:interrupted');
    await b.emu.waitFor(
      () =>
        b.emu
          .messagesIn('C0INCIDENT')
          .flatMap((m) => [m, ...b.emu.threadOf('C0INCIDENT', m.ts)])
          .find((m) => /restart-redis on pi-b was interrupted: its outcome was never recorded/.test(m.text)),
      10_000,
      'the interruption said in the thread',
    );
  }, 90_000);
});
