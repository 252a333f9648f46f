import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postAlert, redisDownAlert } from '../support/lab/alertmanager.js';
import { LAB_APPROVER_GROUP } from '../support/lab/bot-config.js';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { LabBot } from '../support/lab-bot.js';
import {
  type SlackEmulator,
  type StoredMessage,
  startSlackEmulator,
} from '../support/slack-emulator/index.js';

/**
 * An incident's whole life through Slack, as an operator lives it: however it resolves (a
 * healthy status, a resolved alert, by hand), its Approve cards close; an alert-opened incident
 * gets a diagnosis, not "still present"; Ack says who is on it; a resolve waits for a run.
 */

/** Its own fingerprint: the alerts suite's RedisDown must not count as a repeat here. */
const FINGERPRINT = 'lifecycle-redisdown-pi-b';

let lab: Lab;
let emu: SlackEmulator;
let bot: LabBot;
const faults: FaultHandle[] = [];

async function revertAll(): Promise<void> {
  while (faults.length > 0) await faults.pop()?.revert();
}

const hasButtons = (m: StoredMessage | undefined) =>
  JSON.stringify(m?.blocks ?? []).includes('"type":"button"');
/** The thread's replies (the root itself excluded: a resolved root also reads "Resolved: …"). */
const texts = (root: StoredMessage) =>
  bot
    .thread(root)
    .filter((m) => m.ts !== root.ts)
    .map((m) => m.text);

function row<T>(sql: string, ...params: unknown[]): T | undefined {
  const db = new Database(bot.storePath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).get(...params) as T | undefined;
  } finally {
    db.close();
  }
}

describeLab('incident lifecycle on the lab', () => {
  beforeAll(async () => {
    lab = await startLab();
    emu = await startSlackEmulator({ host: lab.hostAddress });
    emu.setUsergroup(LAB_APPROVER_GROUP, ['U0GROUPOPS']);
    bot = new LabBot(lab, emu);
    await bot.start();
  }, 120_000);
  afterAll(async () => {
    await revertAll().catch(() => undefined);
    await bot?.stop();
    await emu?.close();
    await lab?.down();
  });

  it('an alert opens the incident; its first diagnosis is a diagnosis; the resolved alert closes card and incident', async () => {
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-b', service: 'redis-server' }));
    const since = bot.latestTs();
    const startsAt = new Date().toISOString();
    expect(await postAlert(lab, redisDownAlert('firing', startsAt, FINGERPRINT))).toBe(202);
    const card = await bot.card('Restart redis-server on pi-b', since);
    const root = await bot.rootOf('2:pi-b');
    await bot.outboxDrained();
    const thread = texts(root);
    expect(thread.some((t) => t.startsWith('Still present'))).toBe(false);
    expect(thread.some((t) => /Diagnosis at/.test(t))).toBe(true);
    await revertAll();
    expect(await postAlert(lab, redisDownAlert('resolved', startsAt, FINGERPRINT))).toBe(202);
    expect(await bot.outcome(card, 30_000)).toBe('cancelled');
    await emu.waitFor(() => texts(root).some((t) => t.startsWith('Resolved')), 20_000, 'the resolved notice');
    await bot.outboxDrained();
    expect(hasButtons(emu.message(bot.channel, card.message.ts))).toBe(false);
  });

  it('a status that finds the incident healed resolves it and closes its Approve card', async () => {
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' }));
    const since = bot.latestTs();
    await bot.status();
    const card = await bot.card('Restart nginx on pi-a', since);
    const root = await bot.rootOf('1:pi-a');
    expect(hasButtons(emu.message(bot.channel, card.message.ts))).toBe(true);
    await revertAll(); // fixed by hand, not through the bot
    await lab.waitForVip(['pi-a']);
    await bot.status();
    await emu.waitFor(() => texts(root).some((t) => t.startsWith('Resolved')), 20_000, 'the resolved notice');
    expect(await bot.outcome(card)).toBe('cancelled');
    await bot.outboxDrained();
    const updated = emu.message(bot.channel, card.message.ts);
    expect(hasButtons(updated)).toBe(false);
    expect(JSON.stringify(updated?.blocks)).toMatch(/incident was resolved/);
    // The root keeps what the incident was, marked resolved, with no Ack button left.
    const rootNow = emu.message(bot.channel, root.ts);
    expect(rootNow?.text).toMatch(/^Resolved: Incident 1 — UI is slow or blank/);
    expect(JSON.stringify(rootNow?.blocks)).toMatch(/Resolved at/);
    expect(hasButtons(rootNow)).toBe(false);
    // A click on the old card runs nothing and says why.
    await bot.click('U0APPROVER1', card).ack;
    await emu.waitFor(
      () =>
        bot
          .ephemerals('U0APPROVER1')
          .some((t) => /not run \(cancelled at .*\): the incident was resolved/.test(t)),
      10_000,
      'the refusal of a click on the closed card',
    );
    expect(bot.auditOf(card.approvalId).some((a) => a.event === 'execute-step')).toBe(false);
  });

  it('a symptom back soon after a resolve reopens the same incident and thread', async () => {
    const before = await bot.rootOf('1:pi-a');
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' }));
    await bot.status();
    await emu.waitFor(() => texts(before).some((t) => t.startsWith(':repeat: Reopened')), 20_000, 'reopened');
    expect((await bot.rootOf('1:pi-a')).ts).toBe(before.ts);
    await revertAll();
    await lab.waitForVip(['pi-a']);
    await bot.status();
    await emu.waitFor(
      () => texts(before).filter((t) => t.startsWith('Resolved')).length === 2,
      20_000,
      'resolved again',
    );
  });

  it('Ack: responders and approvers only, once; the root says who and when', async () => {
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-b', service: 'redis-server' }));
    await bot.status();
    const root = await bot.rootOf('2:pi-b');
    const withAck = await emu.waitFor(
      () => {
        const m = emu.message(bot.channel, root.ts);
        return hasButtons(m) ? m : undefined;
      },
      10_000,
      'the Ack button',
    );
    await bot.clickAck('U0STRANGER', root, withAck).ack;
    await emu.waitFor(
      () => bot.ephemerals('U0STRANGER').some((t) => /Only responders and approvers/.test(t)),
      10_000,
      'the stranger refused',
    );
    await bot.clickAck('U0APPROVER2', root, withAck).ack;
    await emu.waitFor(
      () =>
        JSON.stringify(emu.message(bot.channel, root.ts)?.blocks).includes('Acknowledged by <@U0APPROVER2>'),
      10_000,
      'the root showing the acknowledgement',
    );
    await bot.outboxDrained();
    expect(hasButtons(emu.message(bot.channel, root.ts))).toBe(false);
    // A second person whose client still shows the button.
    await bot.clickAck('U0APPROVER1', root, withAck).ack;
    await emu.waitFor(
      () => bot.ephemerals('U0APPROVER1').some((t) => /Already acknowledged by <@U0APPROVER2>/.test(t)),
      10_000,
      'a second ack refused',
    );
    const stored = row<{ acknowledged_by: string; acknowledged_at: number; opened_at: number }>(
      "SELECT acknowledged_by, acknowledged_at, opened_at FROM incidents WHERE key = '2:pi-b' AND status = 'open'",
    );
    expect(stored?.acknowledged_by).toBe('U0APPROVER2');
    expect(stored?.acknowledged_at).toBeGreaterThanOrEqual(stored?.opened_at ?? Number.POSITIVE_INFINITY);
    await revertAll();
    await bot.status();
    await emu.waitFor(() => texts(root).some((t) => t.startsWith('Resolved')), 20_000, 'resolved');
  });

  it('resolve while an approval runs: the run finishes and is recorded, then the incident resolves', async () => {
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' }));
    const since = bot.latestTs();
    await bot.status();
    const card = await bot.card('Restart nginx on pi-a', since);
    const root = await bot.rootOf('1:pi-a');
    const resolvedBefore = texts(root).filter((t) => t.startsWith('Resolved')).length;
    await lab.execOk('pi-a', 'echo 4 > /etc/okome/lab-slow-restart');
    try {
      await bot.click('U0APPROVER1', card).ack;
      await emu.waitFor(() => bot.approvalState(card.approvalId) === 'running', 30_000, 'the run to start');
      await emu.slash({ userId: 'U0APPROVER2', channelId: bot.channel, text: 'resolve 1:pi-a' }).ack;
      expect(await bot.outcome(card, 60_000)).toBe('succeeded');
      await emu.waitFor(
        () => texts(root).filter((t) => t.startsWith('Resolved')).length > resolvedBefore,
        30_000,
        'resolved',
      );
    } finally {
      await lab.execOk('pi-a', 'rm -f /etc/okome/lab-slow-restart');
    }
    const approval = row<{ finished_at: number }>(
      "SELECT json_extract(record, '$.finishedAt') AS finished_at FROM approvals WHERE id = ?",
      card.approvalId,
    );
    const incident = row<{ resolved_at: number }>(
      "SELECT resolved_at FROM incidents WHERE key = '1:pi-a' ORDER BY id DESC LIMIT 1",
    );
    expect(approval?.finished_at).toBeGreaterThan(0);
    expect(incident?.resolved_at).toBeGreaterThanOrEqual(approval?.finished_at ?? Number.POSITIVE_INFINITY);
    faults.length = 0;
    await lab.waitForVip(['pi-a'], 15_000);
  });
});
