import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import { writeBotConfig } from '../support/lab/bot-config.js';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { type LabMonitoring, monitoringAvailability, startMonitoring } from '../support/lab/monitoring.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { LabBot } from '../support/lab-bot.js';
import {
  type SlackEmulator,
  type StoredMessage,
  startSlackEmulator,
} from '../support/slack-emulator/index.js';

/**
 * The monitoring loop for real: Debian's exporters on the Pis, Prometheus with the shipped
 * rules and Alertmanager with the shipped receiver (lab timings: docs/lab.md) deliver to the bot,
 * which opens, resolves and watches the path itself (dead-man's switch). No hand-made bodies.
 */

/** The bot's dead-man timeout here: Watchdog arrives every 1–2 s, so at least 4 are missed before it trips. */
const DEADMAN_MS = 8000;

let lab: Lab;
let mon: LabMonitoring;
let emu: SlackEmulator;
let bot: LabBot;
const faults: FaultHandle[] = [];

async function revertAll(): Promise<void> {
  while (faults.length > 0) await faults.pop()?.revert();
}

/** When the bot posted a message (by its ts: two notices may read the same). */
const postTime = (message: StoredMessage) =>
  emu.callsTo('chat.postMessage').find((c) => c.response.ts === message.ts)?.time;
const threadPosts = (root: StoredMessage) =>
  emu.callsTo('chat.postMessage').filter((c) => c.params.thread_ts === root.ts).length;
/** Channel posts (not later edits: a resolved root is reworded) that opened a RedisDown incident. */
const redisRoots = () =>
  emu
    .callsTo('chat.postMessage')
    .filter((c) => c.params.thread_ts === undefined)
    .filter((c) => {
      const text = String(c.params.text);
      return text.includes('opened by the alert `RedisDown`') || text.startsWith('Incident 2');
    });
const deadmanNotices = (kind: 'down' | 'back') =>
  emu.messagesIn(bot.channel).filter((m) => m.text.includes(`*The monitoring path is ${kind}*`));

const failoverNotices = () =>
  emu
    .callsTo('chat.postMessage')
    .filter((c) => String(c.params.text).includes('VIP moved from *pi-a* to *pi-b*'));
/** Channel posts since `since` (new threads or broadcast replies), as text. */
const channelPostsSince = (since: number) =>
  emu
    .callsTo('chat.postMessage')
    .filter((c) => c.time >= since && (c.params.thread_ts === undefined || c.params.reply_broadcast === true))
    .map((c) => String(c.params.text).slice(0, 90));

/** Alertmanager's count of webhook notifications sent: its flushes, as a positive event to wait for. */
async function notificationsSent(): Promise<number> {
  const r = await fetch(`${mon.alertmanagerUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
  const m = /^alertmanager_notifications_total\{integration="webhook"\} (\d+)/m.exec(await r.text());
  return Number(m?.[1] ?? 0);
}

/** Until Alertmanager has sent `n` more notifications (Watchdog repeats every 1–2 s). */
async function notificationsAfter(n: number): Promise<void> {
  const from = await notificationsSent();
  await emu.waitFor(
    async () => (await notificationsSent().catch(() => from)) >= from + n,
    15_000,
    `${n} more notifications`,
  );
}

function alertTimeline(): Array<{ text: string; labels: Record<string, string> }> {
  const db = new Database(bot.storePath, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT text, data FROM timeline WHERE kind = 'alert' ORDER BY id")
      .all() as Array<{
      text: string;
      data: string;
    }>;
    return rows.map((r) => ({
      text: r.text,
      labels: (JSON.parse(r.data) as { labels: Record<string, string> }).labels,
    }));
  } finally {
    db.close();
  }
}

describeLab(
  'the monitoring loop on the lab: exporters → Prometheus → Alertmanager → bot',
  () => {
    beforeAll(async () => {
      const started = Date.now();
      lab = await startLab();
      const labUp = Date.now();
      mon = await startMonitoring(lab);
      const monUp = Date.now();
      emu = await startSlackEmulator({ host: lab.hostAddress });
      const config = parse(await readFile(lab.configPath, 'utf8')) as ConfigInput;
      const configPath = join(lab.workDir, 'okome.monitoring.yml');
      await writeBotConfig(configPath, {
        ...config,
        alerts: {
          deadman: { enabled: true, timeoutMs: DEADMAN_MS },
          alertmanager: { url: mon.alertmanagerUrl },
        },
      });
      bot = new LabBot(lab, emu, configPath);
      await bot.start().catch((error: unknown) => {
        throw new Error(`the bot did not start: ${bot.log.join('').slice(-3000)}`, { cause: error });
      });
      await emu.waitFor(
        async () => (await bot.health().catch(() => undefined))?.deadman === 'alive',
        20_000,
        'the first Watchdog to reach the bot',
      );
      console.log(
        `[lab] lab up in ${labUp - started} ms, monitoring loop up (every target scraped) in ${monUp - labUp} ms, first Watchdog at the bot ${Date.now() - monUp} ms later`,
      );
    }, 120_000);
    afterAll(async () => {
      await revertAll().catch(() => undefined);
      await bot?.stop();
      await emu?.close();
      await lab?.down();
    });

    it('redis stopped on pi-b → incident 2 with the restart card through Prometheus and Alertmanager; Alertmanager restarted meanwhile → nothing doubled; redis started → resolved once', async () => {
      const before = redisRoots().length;
      const stoppedAt = Date.now();
      faults.push(await applyFault(lab, 'service-stop', { node: 'pi-b', service: 'redis-server' }));
      const rootCall = await emu.waitFor(() => redisRoots()[before], 30_000, 'the RedisDown incident');
      const rootPosted = rootCall.time;
      const root = await emu.waitFor(
        () => emu.message(bot.channel, String(rootCall.response.ts)),
        5000,
        'the root message',
      );
      const card = await bot.card('Restart redis-server on pi-b', 0, root);
      expect(card.message.text).toMatch(/pending/);
      // Prometheus's alert (its labels: job, instance, node from the scrape config), not a status.
      const firing = alertTimeline().find((a) => a.text === 'RedisDown on pi-b firing');
      expect(firing?.labels).toMatchObject({
        alertname: 'RedisDown',
        incident: '2',
        job: 'redis',
        instance: '10.86.0.19:9121',
        node: 'pi-b',
      });
      const prom = (await mon.prometheusAlerts()).find((a) => a.labels.alertname === 'RedisDown');
      expect(prom?.state).toBe('firing');
      const activeAt = Date.parse((prom as unknown as { activeAt: string }).activeAt);
      const firedAt = activeAt + mon.timings.forSec * 1000;
      console.log(
        `[lab] redis stopped → incident root in Slack ${rootPosted - stoppedAt} ms (for: ${mon.timings.forSec} s); Prometheus firing → Slack ${rootPosted - firedAt} ms`,
      );
      await emu.waitFor(
        () => bot.thread(root).some((m) => m.text.startsWith('Alerts (1)')),
        10_000,
        'the summary',
      );
      await bot.outboxDrained();

      // Alertmanager restarted (a clean stop keeps its notification log) while RedisDown fires.
      const postsBefore = threadPosts(root);
      const restartAt = Date.now();
      await mon.restart('alertmanager');
      // Prometheus re-sends the firing alert within its resend delay.
      await emu.waitFor(
        async () =>
          (await mon.alertmanagerAlerts().catch(() => [])).some((a) => a.labels.alertname === 'RedisDown')
            ? true
            : undefined,
        10_000,
        'RedisDown back in Alertmanager',
      );
      await notificationsAfter(2);
      await bot.outboxDrained();
      console.log(`[lab] Alertmanager restarted and re-fed by Prometheus in ${Date.now() - restartAt} ms`);
      expect(redisRoots()).toHaveLength(before + 1);
      expect(threadPosts(root)).toBe(postsBefore);

      const startedAt = Date.now();
      await revertAll();
      const resolved = await emu.waitFor(
        () => bot.thread(root).find((m) => m.text.includes('RedisDown on pi-b resolved')),
        30_000,
        'the resolution',
      );
      console.log(
        `[lab] redis started → resolution in the thread ${(postTime(resolved) ?? Date.now()) - startedAt} ms`,
      );
      // Prometheus re-sends the resolved alert for a while; Alertmanager flushes on: no second one.
      await notificationsAfter(3);
      await bot.outboxDrained();
      expect(bot.thread(root).filter((m) => m.text.includes('RedisDown on pi-b resolved'))).toHaveLength(1);
      expect(redisRoots()).toHaveLength(before + 1);
    }, 120_000);

    it('nginx stopped on pi-a: the VIP moves; keepalived, the VIP watcher and Alertmanager (NginxDown) all report it, one failover notice', async () => {
      const before = failoverNotices().length;
      const since = Date.now();
      faults.push(await applyFault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' }));
      await lab.waitForVip(['pi-b']);
      const notice = await emu.waitFor(() => failoverNotices()[before], 15_000, 'the failover notice');
      // The watcher has seen the move too, and Prometheus's NginxDown reached the bot.
      await emu.waitFor(async () => (await bot.health()).vipHolder === 'pi-b', 10_000, 'the watcher on pi-b');
      await emu.waitFor(
        () => (alertTimeline().some((a) => a.text === 'NginxDown on pi-a firing') ? true : undefined),
        20_000,
        'NginxDown from Alertmanager',
      );
      await notificationsAfter(2);
      await bot.outboxDrained();
      console.log(
        `[lab] VIP move: failover notice ${notice.time - since} ms after nginx stopped; channel posts: ${JSON.stringify(channelPostsSince(since))}`,
      );
      expect(failoverNotices()).toHaveLength(before + 1);
      await revertAll();
      await lab.waitForVip(['pi-a'], 15_000);
      await emu.waitFor(
        () => (alertTimeline().some((a) => a.text === 'NginxDown on pi-a resolved') ? true : undefined),
        20_000,
        'NginxDown resolved',
      );
      await notificationsAfter(2);
      await bot.outboxDrained();
      expect(failoverNotices()).toHaveLength(before + 1);
    }, 90_000);

    it('chaos on pi-b (flag, iptables rules, redis stopped) → incident 7 through the loop with the disable-chaos card; reverted → each alert resolved once', async () => {
      const since = Date.now();
      faults.push(await applyFault(lab, 'chaos', { node: 'pi-b' }));
      const rootCall = await emu.waitFor(
        () =>
          emu
            .callsTo('chat.postMessage')
            .find(
              (c) =>
                c.time >= since &&
                c.params.thread_ts === undefined &&
                /opened by the alert `Chaos(Enabled|TestTriggered)`|^Incident 7/.test(String(c.params.text)),
            ),
        30_000,
        'the chaos incident',
      );
      console.log(`[lab] chaos flag set → incident 7 in Slack ${rootCall.time - since} ms`);
      const root = await emu.waitFor(
        () => emu.message(bot.channel, String(rootCall.response.ts)),
        5000,
        'the root',
      );
      await bot.card('Remove the chaos flag', 0, root);
      for (const name of ['ChaosEnabled', 'ChaosTestTriggered'])
        await emu.waitFor(
          () => (alertTimeline().some((a) => a.text === `${name} on pi-b firing`) ? true : undefined),
          20_000,
          `${name} from Alertmanager`,
        );
      await revertAll();
      for (const name of ['ChaosEnabled', 'ChaosTestTriggered'])
        await emu.waitFor(
          () => bot.thread(root).find((m) => m.text.includes(`${name} on pi-b resolved`)),
          20_000,
          `${name} resolved`,
        );
      await notificationsAfter(3);
      await bot.outboxDrained();
      for (const name of ['ChaosEnabled', 'ChaosTestTriggered'])
        expect(bot.thread(root).filter((m) => m.text.includes(`${name} on pi-b resolved`))).toHaveLength(1);
      console.log(`[lab] chaos: channel posts ${JSON.stringify(channelPostsSince(since))}`);
    }, 90_000);

    it("Alertmanager stopped → the bot's 'monitoring path is down' notice within its timeout; started → the return notice", async () => {
      const downBefore = deadmanNotices('down').length;
      const backBefore = deadmanNotices('back').length;
      const stoppedAt = Date.now();
      await mon.stop('alertmanager');
      const down = await emu.waitFor(
        () => deadmanNotices('down')[downBefore],
        DEADMAN_MS + 10_000,
        "the 'monitoring path is down' notice",
      );
      const downAt = postTime(down) ?? Date.now();
      console.log(
        `[lab] Alertmanager stopped → 'monitoring path is down' in ${downAt - stoppedAt} ms (timeout ${DEADMAN_MS} ms)`,
      );
      // The last Watchdog arrived before the stop: the notice comes at most the timeout after it.
      // + the bot's outbox (3 s of room for a loaded machine).
      expect(downAt - stoppedAt).toBeLessThanOrEqual(DEADMAN_MS + 3000);
      expect(down.text).toContain('`Watchdog`');
      expect(down.text).toContain(`for ${DEADMAN_MS / 1000} s`);

      const startedAt = Date.now();
      await mon.start('alertmanager');
      const back = await emu.waitFor(
        () => deadmanNotices('back')[backBefore],
        20_000,
        "the 'monitoring path is back' notice",
      );
      console.log(
        `[lab] Alertmanager started → 'monitoring path is back' in ${(postTime(back) ?? Date.now()) - startedAt} ms`,
      );
      await notificationsAfter(2);
      await bot.outboxDrained();
      expect(deadmanNotices('down')).toHaveLength(downBefore + 1);
      expect(deadmanNotices('back')).toHaveLength(backBefore + 1);
    }, 60_000);

    it("Prometheus stopped → Alertmanager resolves Watchdog, which does not count as seen: 'monitoring path is down' within the timeout + Watchdog's 4 s validity; started → back", async () => {
      const downBefore = deadmanNotices('down').length;
      const backBefore = deadmanNotices('back').length;
      const stoppedAt = Date.now();
      await mon.stop('prometheus');
      const down = await emu.waitFor(
        () => deadmanNotices('down')[downBefore],
        DEADMAN_MS + 15_000,
        "the 'monitoring path is down' notice",
      );
      const downAt = postTime(down) ?? Date.now();
      // Prometheus's last alerts stay valid for 4 × max(resend delay, evaluation interval) = 4 s.
      const validityMs = 4 * mon.timings.intervalSec * 1000;
      console.log(
        `[lab] Prometheus stopped → 'monitoring path is down' in ${downAt - stoppedAt} ms (timeout ${DEADMAN_MS} ms + ${validityMs} ms validity)`,
      );
      expect(downAt - stoppedAt).toBeLessThanOrEqual(DEADMAN_MS + validityMs + 3000);
      expect(
        (await mon.alertmanagerAlerts()).some(
          (a) => a.labels.alertname === 'Watchdog' && a.status.state === 'active',
        ),
      ).toBe(false);

      const startedAt = Date.now();
      await mon.start('prometheus');
      const back = await emu.waitFor(
        () => deadmanNotices('back')[backBefore],
        20_000,
        "the 'monitoring path is back' notice",
      );
      console.log(
        `[lab] Prometheus started → 'monitoring path is back' in ${(postTime(back) ?? Date.now()) - startedAt} ms`,
      );
      await notificationsAfter(2);
      await bot.outboxDrained();
      expect(deadmanNotices('down')).toHaveLength(downBefore + 1);
      expect(deadmanNotices('back')).toHaveLength(backBefore + 1);
    }, 60_000);
  },
  monitoringAvailability,
);
