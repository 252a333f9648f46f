import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyFault } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { LabBot } from '../support/lab-bot.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * Issue 13, point 3 as operators see it: after pi-a's link comes back, the first status sees
 * pi-a as it is (healthy), not through an SSH connection that stalled during the outage.
 * Ten runs in a row: one stale connection in any of them fails the test.
 */

const RUNS = 10;

let lab: Lab;
let emu: SlackEmulator;
let bot: LabBot;

describeLab('link-down on pi-a, reverted: the first status is healthy', () => {
  beforeAll(async () => {
    lab = await startLab();
    emu = await startSlackEmulator({ host: lab.hostAddress });
    bot = new LabBot(lab, emu);
    await bot.start();
    await bot.vipWatching();
  }, 120_000);
  afterAll(async () => {
    await bot?.stop();
    await emu?.close();
    await lab?.down();
  });

  it(`in ${RUNS} runs out of ${RUNS}`, async () => {
    const firsts: string[] = [];
    for (let run = 1; run <= RUNS; run += 1) {
      const started = performance.now();
      const fault = await applyFault(lab, 'link-down', { node: 'pi-a' });
      try {
        await lab.waitForVip(['pi-b'], 20_000);
        // Let the bot's own checks of pi-a run into the dead link (and stall) before it returns.
        await emu.waitFor(
          async () => (await bot.health().catch(() => undefined))?.vipHolder === 'pi-b',
          20_000,
          'the bot to see the VIP on pi-b',
        );
      } finally {
        await fault.revert();
      }
      // The revert returns once pi-a holds the VIP again: the very next status must be healthy.
      const summary = await bot.status();
      firsts.push(summary.text.split('\n')[0] ?? '');
      console.log(
        `[lab] run ${run}: ${firsts.at(-1)} (${Math.round(performance.now() - started)} ms for the run)`,
      );
    }
    expect(firsts).toEqual(Array.from({ length: RUNS }, () => 'OKOME status: healthy'));
  }, 400_000);
});
