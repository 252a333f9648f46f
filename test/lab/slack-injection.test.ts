import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { LabBot } from '../support/lab-bot.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';
import { CORPUS, injectionProblems, marked, slackEscaped } from '../support/slack-text-audit.js';

/**
 * Command output is outside text too: the injection corpus written into both Pis' keepalived
 * journal reaches Slack as the evidence of incident 3 (keepalived stopped on both, no VIP
 * holder) and in check summaries, and is shown only escaped.
 */

let lab: Lab;
let emu: SlackEmulator;
let bot: LabBot;
const faults: FaultHandle[] = [];

/**
 * Journal lines (the lab prefixes the epoch); one names the corpus as the host. The 10 KB line
 * goes last: the code block is clipped after it, and the others must be shown first.
 */
function journalLines(node: string): string {
  const longest = CORPUS.findIndex((c) => c.length > 1000);
  const order = [...CORPUS.keys()].filter((i) => i !== longest).concat(longest);
  return [
    `Dec 02 03:00:00 ${marked(0)} Keepalived_vrrp[1]: (VI_1) Entering MASTER STATE ${marked(5)}`,
    ...order.map((i) => `Dec 02 03:00:01 ${node} Keepalived_vrrp[1]: ${marked(i)}`),
  ].join('\n');
}

describeLab('mention and link injection through command output', () => {
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

  it('the corpus in the keepalived journal of both Pis shows only escaped in the incident evidence', async () => {
    // The journal replaced, not appended to: lines of an earlier run (within --since) would
    // come first in the clipped code block. Written before keepalived stops: the VIP watcher may
    // open incident 3 (with its evidence) as soon as the VIP is gone, before any status is asked.
    for (const node of ['pi-a', 'pi-b'] as const) {
      const b64 = Buffer.from(`${journalLines(node)}\n`).toString('base64');
      await lab.execOk(node, [
        'sh',
        '-c',
        `t=$(date +%s); printf %s '${b64}' | base64 -d | sed "s/^/$t /" > /var/log/okome-lab/journal/keepalived.log`,
      ]);
    }
    for (const node of ['pi-a', 'pi-b'] as const) {
      faults.push(await applyFault(lab, 'service-stop', { node, service: 'keepalived' }));
    }
    await bot.status();
    const root = await bot.incidentRoot('Incident 3');
    const evidence = await emu.waitFor(
      () => bot.thread(root).find((m) => m.text.startsWith('Evidence')),
      30_000,
      'the evidence of incident 3',
    );
    const shown = JSON.stringify(evidence.blocks).toLowerCase();
    // The journal did reach Slack, escaped (the long line at least in part).
    for (const [i, raw] of CORPUS.entries()) {
      const escaped = JSON.stringify(`q${i}[${slackEscaped(raw).slice(0, 300)}`)
        .slice(1, -1)
        .toLowerCase();
      expect(shown.includes(escaped), `corpus ${i} in the evidence`).toBe(true);
    }
    expect(injectionProblems(emu)).toEqual([]);
  });
});
