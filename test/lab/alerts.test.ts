import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import { postAlert, redisDownAlert } from '../support/lab/alertmanager.js';
import { writeBotConfig } from '../support/lab/bot-config.js';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { PORTS } from '../support/lab/topology.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { LabBot } from '../support/lab-bot.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * The bot does not wait to be asked: keepalived's signed notify hook (and the VIP watcher when
 * the hook is off) posts failover notices, and Alertmanager alerts open diagnosed incidents.
 */

let lab: Lab;
let emu: SlackEmulator;
let bot: LabBot;
const faults: FaultHandle[] = [];

async function revertAll(): Promise<void> {
  while (faults.length > 0) await faults.pop()?.revert();
}

function noticeTimes(): Array<{ receivedAt: number; noticeRef: string; source: string }> {
  const db = new Database(bot.storePath, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT data FROM timeline WHERE kind = 'notice' AND text LIKE 'VIP moved%' ORDER BY id")
      .all() as Array<{ data: string }>;
    return rows.map((r) => JSON.parse(r.data) as { receivedAt: number; noticeRef: string; source: string });
  } finally {
    db.close();
  }
}

const notices = () => emu.messagesIn(bot.channel).filter((m) => m.text.includes('VIP moved from'));
const postTime = (text: string) =>
  emu.callsTo('chat.postMessage').find((c) => String(c.params.text) === text)?.time;

describeLab('alerts and failover notices on the lab', () => {
  beforeAll(async () => {
    lab = await startLab();
    emu = await startSlackEmulator({ host: lab.hostAddress });
    bot = new LabBot(lab, emu);
    await bot.start();
    await bot.vipWatching();
    expect((await bot.health()).vipHolder).toBe('pi-a');
  }, 120_000);
  afterAll(async () => {
    await revertAll().catch(() => undefined);
    await bot?.stop();
    await emu?.close();
    await lab?.down();
  });

  it('keepalived stopped on pi-a: a failover notice within 1 s of its notify, the cause with restart-keepalived on pi-a only; recovery in the same thread', async () => {
    const before = notices().length;
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-a', service: 'keepalived' }));
    await lab.waitForVip(['pi-b']);
    const notice = await emu.waitFor(() => notices()[before], 10_000, 'the failover notice');
    expect(notice.text).toMatch(/VIP moved from \*pi-a\* to \*pi-b\*.*\(keepalived\)/);
    const hook = noticeTimes().find((n) => n.source === 'keepalived');
    const posted = postTime(notice.text);
    expect(hook).toBeDefined();
    expect(posted).toBeDefined();
    console.log(
      `[lab] failover notice posted ${(posted ?? 0) - (hook?.receivedAt ?? 0)} ms after keepalived's notify reached the bot`,
    );
    expect((posted ?? 0) - (hook?.receivedAt ?? 0)).toBeLessThan(1000);
    // The thread: once the VIP has settled, why it moved (pi-a itself is healthy: no reflash).
    const cause = await emu.waitFor(
      () => emu.threadOf(bot.channel, notice.ts).find((m) => m.text.includes('Why the VIP moved')),
      30_000,
      'the cause',
    );
    expect(cause.text).toContain('(`keepalived-down`)');
    expect(
      emu
        .threadOf(bot.channel, notice.ts)
        .some((m) => m.text.includes('reflash') || m.text.includes('Reflash')),
    ).toBe(false);
    const cards = await emu.waitFor(
      () => {
        const pending = emu.threadOf(bot.channel, notice.ts).filter((m) => m.text.endsWith(': pending'));
        return pending.length > 0 ? pending : undefined;
      },
      10_000,
      'the card',
    );
    expect(cards.map((m) => m.text)).toEqual([expect.stringMatching(/^Restart keepalived on pi-a\b/)]);
    await revertAll();
    await lab.waitForVip(['pi-a'], 15_000);
    await emu.waitFor(
      () => emu.threadOf(bot.channel, notice.ts).some((m) => m.text.includes('VIP back on pi-a')),
      15_000,
      'the recovery',
    );
  });

  it('a hard crash that leaves both Pis holding the VIP is reported loudly as split brain', async () => {
    faults.push(await applyFault(lab, 'keepalived-kill', { node: 'pi-a' }));
    await lab.waitForVip(['pi-a', 'pi-b']);
    const loud = await emu.waitFor(
      () => emu.messagesIn(bot.channel).find((m) => m.text.includes('SPLIT BRAIN')),
      15_000,
      'split brain',
    );
    expect(loud.text).toMatch(/pi-a and pi-b/);
    await revertAll();
    await lab.waitForVip(['pi-a'], 15_000);
  });

  it('an Alertmanager RedisDown alert opens a diagnosed incident with restart-redis; repeats add no post; resolved noted once', async () => {
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-b', service: 'redis-server' }));
    const startsAt = new Date().toISOString();
    expect(await postAlert(lab, redisDownAlert('firing', startsAt))).toBe(202);
    // The alert's root ("opened by the alert `RedisDown`") becomes the diagnosed incident's root;
    // when the channel is busy the outbox sends only that latest state (coalesced).
    const root = await emu.waitFor(
      () =>
        emu
          .messagesIn(bot.channel)
          .find(
            (m) =>
              m.threadTs === undefined &&
              (m.text.includes('opened by the alert `RedisDown`') || m.text.startsWith('Incident 2')),
          ),
      10_000,
    );
    const card = await bot.card('Restart redis-server on pi-b');
    expect(card.message.text).toMatch(/pending/);
    await emu.waitFor(
      () => emu.threadOf(bot.channel, root.ts).some((m) => m.text.startsWith('Alerts (1)')),
      10_000,
    );
    const posts = () => emu.callsTo('chat.postMessage').length;
    await bot.outboxDrained();
    const quiet = posts();
    // Alertmanager redelivers, and its HA peer sends the same notification.
    expect(await postAlert(lab, redisDownAlert('firing', startsAt))).toBe(202);
    expect(await postAlert(lab, redisDownAlert('firing', startsAt))).toBe(202);
    await emu.waitFor(
      () => emu.threadOf(bot.channel, root.ts).find((m) => m.text.includes('3 deliveries received')),
      10_000,
      'the summary counting 3',
    );
    expect(posts()).toBe(quiet);
    await revertAll();
    expect(await postAlert(lab, redisDownAlert('resolved', startsAt))).toBe(202);
    expect(await postAlert(lab, redisDownAlert('resolved', startsAt))).toBe(202);
    await emu.waitFor(
      () => emu.threadOf(bot.channel, root.ts).some((m) => m.text.includes('RedisDown on pi-b resolved')),
      10_000,
    );
    // Both resolved deliveries answered 202 after being stored: once the outbox is drained, a
    // second "resolved" post would be in the thread.
    await bot.outboxDrained();
    expect(
      emu.threadOf(bot.channel, root.ts).filter((m) => m.text.includes('RedisDown on pi-b resolved')),
    ).toHaveLength(1);
  });

  it('unsigned, wrongly signed and replayed keepalived hooks are refused and change nothing', async () => {
    const url = `http://${lab.botAddress}:${PORTS.botHttp}/hooks/keepalived`;
    const body = JSON.stringify({ node: 'pi-b', instance: 'VI_1', state: 'MASTER' });
    const before = notices().length;
    const unsigned = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(unsigned.status).toBe(401);
    const ts = String(Math.floor(Date.now() / 1000));
    const wrong = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-okome-timestamp': ts,
        'x-okome-signature': `v1=${'0'.repeat(64)}`,
      },
      body,
    });
    expect(wrong.status).toBe(401);
    await bot.outboxDrained();
    expect(notices().length).toBe(before);
  });

  it('with the hook off and the fallback poll 10 min away, the address stream brings the watcher’s notice within 1.5 s', async () => {
    await bot.stop();
    // Only the pushed path can see the move in time: the watcher's idle poll is 10 minutes away.
    const config = parse(await readFile(lab.configPath, 'utf8')) as ConfigInput;
    const configPath = join(lab.workDir, 'okome.stream.yml');
    await writeBotConfig(configPath, {
      ...config,
      alerts: { vipWatch: { intervalMs: 2000, stream: true, idleIntervalMs: 600_000 } },
    });
    bot = new LabBot(lab, emu, configPath);
    await bot.start({ OKOME_KEEPALIVED_SECRET: '' });
    await bot.vipWatching();
    await emu.waitFor(
      async () => (await bot.health()).vipStream?.join() === 'pi-a,pi-b',
      20_000,
      'both address streams open',
    );
    const before = notices().length;
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-a', service: 'keepalived' }));
    let moved = 0;
    await emu.waitFor(
      async () => {
        const holders = await lab.vipHolders();
        if (holders.join(',') === 'pi-b') moved = Date.now();
        return moved > 0;
      },
      10_000,
      'the VIP on pi-b',
    );
    const notice = await emu.waitFor(() => notices()[before], 10_000, 'the watcher notice');
    expect(notice.text).toMatch(/\(VIP watcher\)/);
    const after = (postTime(notice.text) ?? Number.POSITIVE_INFINITY) - moved;
    console.log(`[lab] watcher notice posted ${after} ms after the VIP moved (pushed by the address stream)`);
    expect(after).toBeLessThan(1500);
    await revertAll();
    await lab.waitForVip(['pi-a'], 15_000);
  });
});
