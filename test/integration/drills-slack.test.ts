import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { runCli } from '../../src/cli/run-cli.js';
import { type Drill, startDrill, stopSent, type Transition } from '../../src/domain/drill.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { drillInput } from '../support/drill-fixtures.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * Drills through the real app and Bolt, without a lab: the nodes are closed loopback ports, so
 * every remote command fails to connect. That is the case where a drill must say loudly that it
 * could not restore what it may have stopped.
 */

let cfg: LoopbackConfig | undefined;
let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
afterEach(async () => {
  await app?.stop({ graceMs: 1000 });
  await emu?.close();
  cfg?.cleanup();
  app = undefined;
  emu = undefined;
  cfg = undefined;
});

const CHANNEL = 'C0INCIDENT';

async function start(prepare: (store: ReturnType<typeof openSqliteStore>) => Promise<void> = async () => {}) {
  cfg = await loopbackConfig();
  const store = openSqliteStore({ path: cfg.config.store.path });
  await prepare(store);
  await store.close();
  emu = await startSlackEmulator();
  app = await startInProcessBot(cfg.config, emu);
  return { emu, cfg };
}

async function okomeDrills(path: string, json: boolean): Promise<string> {
  const out: string[] = [];
  const code = await runCli(['drills', ...(json ? ['--json'] : []), '--config', path], {
    env: {},
    cwd: '/',
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: () => true },
  });
  expect(code).toBe(0);
  return out.join('');
}

async function drills(
  path: string,
): Promise<Array<{ id: number; kind: string; outcome: string | null; phase: string }>> {
  return JSON.parse(await okomeDrills(path, true));
}

const ok = (t: Transition): Drill => {
  if (!t.ok) throw new Error(t.reason);
  return t.next;
};

describe('/okome drill (in-process bot, Slack emulator)', () => {
  it('refused while an incident is open, naming it; nothing is stored or posted', async () => {
    const { emu } = await start(async (store) => {
      await store.openOrReuseIncident({
        key: '2:pi-b',
        number: '2',
        title: 'Redis cache unavailable',
        channel: CHANNEL,
        requester: 'U0OPS',
        now: Date.now(),
      });
    });
    const { ack } = emu.slash({ userId: 'U0REQUEST', channelId: CHANNEL, text: 'drill failover' });
    expect((await ack).payload).toMatchObject({
      text: 'Drill refused: an incident is open: Redis cache unavailable (2:pi-b). Resolve it first; a drill never runs over a real incident.',
    });
    expect(await drills(cfg?.path ?? '')).toEqual([]);
    expect(await okomeDrills(cfg?.path ?? '', false)).toBe(
      'no drills yet (/okome drill failover|redis in Slack)\n',
    );
    expect(emu.messagesIn(CHANNEL)).toEqual([]);
  });

  it('an unknown drill is a usage error listing the drills', async () => {
    const { emu } = await start();
    const { ack } = emu.slash({ userId: 'U0REQUEST', channelId: CHANNEL, text: 'drill nginx' });
    expect(String((await ack).payload.text)).toContain('`drill` takes one of: failover, redis.');
  });

  it('redis drill: a card pinning stop and restart; a non-approver is refused, one approver runs it; the stop cannot be confirmed → restore tried → said loudly, recorded not-restored', async () => {
    const { emu, cfg } = await start();
    const { ack } = emu.slash({ userId: 'U0REQUEST', channelId: CHANNEL, text: 'drill redis' });
    await ack;
    const card = await emu.waitFor(
      () => emu.messagesIn(CHANNEL).find((m) => m.text === 'Stop redis-server on pi-b: pending'),
      15_000,
      'the drill card',
    );
    const blocks = JSON.stringify(card.blocks);
    expect(blocks).toContain('sudo systemctl stop redis-server');
    expect(blocks).toContain('sudo systemctl restart redis-server');
    const approvalId = /"value":"(ap_[A-Za-z0-9]+)"/.exec(blocks)?.[1] ?? '';
    // Not an approver: refused, nothing runs.
    await emu.click({
      userId: 'U0REQUEST',
      channelId: CHANNEL,
      messageTs: card.ts,
      actionId: `okome:approve:${approvalId}`,
      value: approvalId,
    }).ack;
    await emu.waitFor(
      () =>
        emu
          .ephemeralsIn(CHANNEL)
          .find((e) => e.user === 'U0REQUEST' && e.text.includes('You may not approve')),
      10_000,
      'the refusal',
    );
    expect((await drills(cfg.path))[0]).toMatchObject({ kind: 'redis', phase: 'awaiting-approval' });
    await emu.click({
      userId: 'U0APPROVER1',
      channelId: CHANNEL,
      messageTs: card.ts,
      actionId: `okome:approve:${approvalId}`,
      value: approvalId,
    }).ack;
    const loud = await emu.waitFor(
      () => emu.messagesIn(CHANNEL).find((m) => m.text.includes('could NOT restore redis-server on pi-b')),
      30_000,
      'the loud message',
    );
    expect(loud.text).toContain('sudo systemctl start redis-server');
    expect(await drills(cfg.path)).toEqual([
      expect.objectContaining({ kind: 'redis', phase: 'finished', outcome: 'not-restored' }),
    ]);
    await emu.waitFor(
      () => emu.message(CHANNEL, card.ts)?.text === 'Stop redis-server on pi-b: failed',
      10_000,
      'the card ended',
    );
  });

  it('start-up: a drill a crash left with keepalived stopped is restored, or said loudly that it could not be', async () => {
    let id = 0;
    const { emu, cfg } = await start(async (store) => {
      const d = await store.insertDrill(drillInput('failover', Date.now() - 5000));
      const running = ok(startDrill(d, { ...d.approval, state: 'running' }, 'pi-a', Date.now() - 4000));
      const sent = ok(stopSent(running, Date.now() - 3000));
      expect(await store.compareAndSetDrill(sent, d.version)).toBe(true);
      id = d.id;
    });
    const loud = await emu.waitFor(
      () =>
        emu
          .messagesIn(CHANNEL)
          .find((m) => m.text.includes(`Drill ${id} could NOT restore keepalived on pi-a`)),
      30_000,
      'the loud message at start-up',
    );
    expect(loud.text).toContain('the bot restarted mid-drill');
    expect(await drills(cfg.path)).toEqual([expect.objectContaining({ id, outcome: 'not-restored' })]);
    expect(await okomeDrills(cfg.path, false)).toMatch(
      new RegExp(
        `^${id} failover \\(incident 4\\) not-restored \\S+Z on pi-a\n    the bot restarted mid-drill`,
      ),
    );
  });
});
