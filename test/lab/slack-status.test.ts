import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { LabBot } from '../support/lab-bot.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/** `/okome status` in Slack (real Bolt, the emulator) against the lab: ack, progress, report, threads. */

let lab: Lab;
let emu: SlackEmulator;
let bot: LabBot;
const faults: FaultHandle[] = [];

describeLab('/okome status on the lab', () => {
  beforeAll(async () => {
    lab = await startLab();
    emu = await startSlackEmulator({ host: lab.hostAddress });
    bot = new LabBot(lab, emu);
    await bot.start();
  }, 120_000);
  afterAll(async () => {
    while (faults.length > 0) await faults.pop()?.revert();
    await bot?.stop();
    await emu?.close();
    await lab?.down();
  });

  it('healthy lab: acked at once, progress updated, the report says healthy with the VIP holder first', async () => {
    const { ack } = emu.slash({ userId: 'U0REQUEST', channelId: bot.channel, text: 'status' });
    const { latencyMs } = await ack;
    expect(latencyMs).toBeLessThan(3000);
    const report = await emu.waitFor(
      () =>
        emu
          .messagesIn(bot.channel)
          .find((m) => m.threadTs === undefined && m.text.startsWith('OKOME status')),
      30_000,
    );
    expect(report.text.split('\n').slice(0, 2)).toEqual([
      'OKOME status: healthy',
      expect.stringContaining('is held by *pi-a*'),
    ]);
    expect(report.edits).toBeGreaterThan(0);
    const progress = emu.callsTo('chat.postMessage').find((c) => String(c.params.text).includes('running'));
    expect(String(progress?.params.text)).toMatch(/running \d+ checks/);
  });

  it('an incident opens a thread with its evidence, a second status reuses it, and a healthy status resolves it', async () => {
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-b', service: 'redis-server' }));
    await bot.status();
    const root = await bot.incidentRoot('Incident 2');
    await emu.waitFor(
      () => bot.thread(root).some((m) => m.text.startsWith('Evidence')),
      20_000,
      'the evidence',
    );
    expect(JSON.stringify(bot.thread(root).map((m) => m.blocks))).toContain(
      'systemctl is-active redis-server',
    );
    await bot.status();
    await emu.waitFor(
      () => bot.thread(root).some((m) => m.text.startsWith('Still present')),
      20_000,
      'the same thread reused',
    );
    const roots = emu
      .messagesIn(bot.channel)
      .filter((m) => m.threadTs === undefined && m.text.startsWith('Incident 2'));
    expect(roots.map((m) => m.ts)).toEqual([root.ts]);
    while (faults.length > 0) await faults.pop()?.revert();
    await bot.status();
    await emu.waitFor(
      () => bot.thread(root).some((m) => m.text.startsWith('Resolved')),
      20_000,
      'the resolution in the thread',
    );
  });
});
