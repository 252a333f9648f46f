import { afterAll, beforeAll, expect, it } from 'vitest';
import { LAB_APPROVER_GROUP } from '../support/lab/bot-config.js';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { LabBot } from '../support/lab-bot.js';
import { isPng, pngSize } from '../support/png.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * End to end: a real fault on the lab → `/okome status` in Slack (the emulator, real Bolt) →
 * Approve by allowed users → the real command runs on the right node → verification → the
 * whole story in the incident thread and the audit.
 */

let lab: Lab;
let emu: SlackEmulator;
let bot: LabBot;
const faults: FaultHandle[] = [];

async function fault(...args: Parameters<typeof applyFault>): Promise<void> {
  faults.push(await applyFault(...args));
}
async function revertAll(): Promise<void> {
  while (faults.length > 0) await faults.pop()?.revert();
}
const threadTexts = (root: Parameters<LabBot['thread']>[0]) => bot.thread(root).map((m) => m.text);

describeLab('approval-gated remediation on the lab', () => {
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

  it('incident 1: nginx stopped on pi-a → Approve → nginx really restarts → verified → resolved', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' });
    const summary = await bot.status();
    expect(summary.text).toMatch(/incident/);
    const root = await bot.incidentRoot('Incident 1');
    const card = await bot.card('Restart nginx on pi-a', 0, root);
    expect(JSON.stringify(card.message.blocks)).toContain('sudo systemctl restart nginx');
    await bot.click('U0APPROVER1', card).ack;
    expect(await bot.outcome(card)).toBe('succeeded');
    expect(await lab.unitState('pi-a', 'nginx')).toBe('active');
    // The execution report: each step with its exit code, then the verification.
    const thread = await emu.waitFor(
      () => {
        const text = JSON.stringify(bot.thread(root).map((m) => m.blocks));
        return text.includes('Verification') ? text : undefined;
      },
      30_000,
      'the execution report in the thread',
    );
    expect(thread).toContain('exit 0');
    await revertAll();
    await bot.status();
    await emu.waitFor(
      () => threadTexts(root).some((t) => t.startsWith('Resolved')),
      20_000,
      'the incident resolved in its thread',
    );
  });

  it('incident 2: redis-server stopped → Approve → PONG again → resolved, the report in the thread', async () => {
    await fault(lab, 'service-stop', { node: 'pi-b', service: 'redis-server' });
    await bot.status();
    const root = await bot.incidentRoot('Incident 2');
    const card = await bot.card('Restart redis-server on pi-b', 0, root);
    await bot.click('U0GROUPOPS', card).ack; // approver through the user group
    expect(await bot.outcome(card)).toBe('succeeded');
    expect((await lab.redis(['ping'])).stdout.trim()).toBe('PONG');
    await revertAll();
    // A healthy status resolves it; the post-incident report follows in the thread as a file.
    await bot.status();
    const [file, ...charts] = await emu.waitFor(
      () => {
        const files = emu.filesInThread('C0INCIDENT', root.ts);
        return files.length >= 3 ? files : undefined;
      },
      30_000,
      'the post-incident report and its charts in the thread',
    );
    expect(charts.map((c) => c.filename.replace(/^.*Z-/, ''))).toEqual([
      'vip-holder.png',
      'check-states.png',
    ]);
    for (const chart of charts) {
      const png = chart.content ?? Buffer.alloc(0);
      expect(isPng(png)).toBe(true);
      expect(png.length).toBeGreaterThan(5000);
      expect(pngSize(png).width).toBe(900);
      expect(pngSize(png).height).toBeGreaterThan(100);
    }
    const md = file?.content?.toString('utf8') ?? '';
    const steps = [
      '**diagnosis** Opened',
      '**approval** restart-redis approved by U0GROUPOPS',
      '**approval** Running',
      '**command** pi-b: sudo systemctl restart redis-server',
      'exit 0 in',
      'verification passed',
      '**resolved** A status found its checks healthy again.',
    ];
    const at = steps.map((step) => md.indexOf(step));
    expect(
      at.every((i) => i > 0),
      `every step in the report:\n${md}`,
    ).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    // Before/after: the redis checks failed at the diagnosis and passed after the fix.
    expect(md).toMatch(/\| redis-ping \| (unreachable|fail|timeout): .* \| ok: /);
    expect(md).toMatch(/\| service:redis-server@pi-b \| fail: .* \| ok: /);
  });

  it('incident 3: keepalived stopped on both → Approve → restarted one after the other, VIP back', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'keepalived' });
    await fault(lab, 'service-stop', { node: 'pi-b', service: 'keepalived' });
    await lab.waitForVip([]);
    await bot.status();
    const card = await bot.card('Restart keepalived on pi-a');
    await bot.click('U0APPROVER2', card).ack;
    expect(await bot.outcome(card, 90_000)).toBe('succeeded');
    await lab.waitForVip(['pi-a'], 15_000);
    faults.length = 0;
  });

  it('incident 6: two approvers (not the requester), the minute rolls over before the last one → not resolved, FLUSHDB runs once', async () => {
    const runaway = await applyFault(lab, 'budget-runaway', {});
    faults.push(runaway);
    await fault(lab, 'redis-miss-storm', {});
    await bot.status('U0APPROVER1');
    const root = await bot.incidentRoot('Incident 6');
    const card = await bot.card('Flush');
    await bot.click('U0APPROVER1', card).ack; // the requester cannot approve a two-person action
    await emu.waitFor(() => bot.ephemerals('U0APPROVER1').some((t) => /requester|asked/i.test(t)), 10_000);
    await bot.click('U0APPROVER2', card).ack;
    await bot.click('U0APPROVER2', card).ack; // the same approver twice counts once
    await emu.waitFor(
      () => bot.auditOf(card.approvalId).filter((a) => a.actor === 'U0APPROVER2').length === 2,
      10_000,
      'both clicks of approver 2 decided',
    );
    expect(bot.approvalState(card.approvalId)).toBe('pending');
    // The rate-limit minute rolls over, driven rather than waited for: the runaway window's
    // counters go, as they expire 2 s after their minute, and the new minute has none at its limit.
    await runaway.revert();
    expect((await lab.redis(['--scan', '--pattern', 'okome:budget:rl:*'])).stdout.trim()).toBe('');
    // A status in the new minute: the runaway is gone, the hit ratio has not recovered. Not resolved.
    await bot.status();
    await bot.outboxDrained();
    expect(threadTexts(root).filter((t) => t.startsWith('Resolved'))).toEqual([]);
    expect(bot.approvalState(card.approvalId)).toBe('pending');
    await bot.click('U0GROUPOPS', card).ack;
    expect(await bot.outcome(card)).toBe('succeeded');
    const steps = bot.auditOf(card.approvalId).filter((a) => a.event === 'execute-step');
    expect(steps.map((a) => a.reason)).toEqual([expect.stringMatching(/^FLUSHDB .*exit 0/)]);
    const keys = (await lab.redis(['--scan', '--pattern', 'okome:budget:rl:*'])).stdout.trim();
    expect(keys).toBe('');
    faults.length = 0;
  });

  it('incident 6: the orchestrator went down before the last approval (incident 5) → refused on golden rule 1, nothing flushed', async () => {
    const runaway = await applyFault(lab, 'budget-runaway', {});
    faults.push(runaway);
    await fault(lab, 'redis-miss-storm', {});
    await bot.status('U0APPROVER1');
    const card = await bot.card('Flush');
    await bot.click('U0APPROVER2', card).ack;
    await emu.waitFor(
      () => bot.auditOf(card.approvalId).some((a) => a.actor === 'U0APPROVER2'),
      10_000,
      'the first approval decided',
    );
    await runaway.revert(); // and the minute rolled over too: only what matters for safety is said
    await fault(lab, 'orchestrator-down', {});
    await bot.click('U0GROUPOPS', card).ack;
    expect(await bot.outcome(card)).toBe('cancelled');
    const cancel = bot.auditOf(card.approvalId).find((a) => a.event === 'cancel');
    expect(cancel?.reason).toMatch(/orchestrator is now the cause \(incident 5.*golden rule 1/);
    expect(cancel?.reason).not.toMatch(/redis-budget|redis-hit-ratio|no longer present/);
    expect(bot.auditOf(card.approvalId).filter((a) => a.event === 'execute-step')).toEqual([]);
    await revertAll();
  });

  it('incident 7: chaos → disable-chaos (two approvers) → flag gone first, iptables flushed, services restarted', async () => {
    await fault(lab, 'chaos', { node: 'pi-a' });
    // Chaos stopped nginx: keepalived's track script moves the VIP. Diagnose once it has settled,
    // or the re-check rightly refuses (disable-chaos restarts keepalived: the VIP holder matters).
    await lab.waitForVip(['pi-b']);
    await bot.status();
    const card = await bot.card('Remove the chaos flag');
    const cardText = JSON.stringify(card.message.blocks);
    expect(cardText.indexOf('rm -f /etc/okome/CHAOS_ENABLE')).toBeLessThan(cardText.indexOf('iptables -F'));
    await bot.click('U0APPROVER1', card).ack;
    await bot.click('U0APPROVER2', card).ack;
    expect(await bot.outcome(card, 90_000)).toBe('succeeded');
    expect((await lab.exec('pi-a', 'test -e /etc/okome/CHAOS_ENABLE')).code).not.toBe(0);
    // Every table flushed: the fault's nat rule too.
    expect((await lab.exec('pi-a', 'iptables-save')).stdout).not.toMatch(/^-A /m);
    expect(await lab.unitState('pi-a', 'nginx')).toBe('active');
    await lab.waitForVip(['pi-a'], 15_000);
    faults.length = 0;
  });

  it('incidents 4, 5 and 5b offer no cache-node action', async () => {
    // Cards posted from now on: an earlier test's card may still change state meanwhile (a
    // failover thread's card is cancelled when the VIP comes back), so the count is of posts.
    const since = Date.now();
    const cardsPosted = () =>
      emu
        .callsTo('chat.postMessage')
        .filter((c) => c.time >= since && String(c.params.text).endsWith(': pending'));
    await fault(lab, 'orchestrator-down', {});
    await bot.status();
    await bot.incidentRoot('Incident 5');
    await revertAll();
    await fault(lab, 'streaming-directives-removed', { node: 'pi-a' });
    await bot.status();
    await bot.incidentRoot('Incident 5b');
    await revertAll();
    await fault(lab, 'link-down', { node: 'pi-a' });
    await lab.waitForVip(['pi-b']);
    await bot.status();
    await bot.incidentRoot('Incident 4');
    await revertAll();
    await lab.waitForVip(['pi-a']);
    await bot.outboxDrained();
    expect(cardsPosted().map((c) => String(c.params.text))).toEqual([]);
  });

  it('refusals: an unauthorized click and a changed precondition run nothing, say why, and are audited', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' });
    await bot.status();
    // Incident 1's own card: the failover thread (nginx down moved the VIP) offers the same fix.
    const card = await bot.card('Restart nginx on pi-a', 0, await bot.incidentRoot('Incident 1'));
    await bot.click('U0STRANGER', card).ack;
    await emu.waitFor(() => bot.ephemerals('U0STRANGER').length > 0, 10_000, 'a refusal for the stranger');
    expect(bot.approvalState(card.approvalId)).toBe('pending');
    // Someone fixes it by hand before the approval: the re-check must notice.
    await revertAll();
    await bot.click('U0APPROVER1', card).ack;
    expect(await bot.outcome(card)).toBe('cancelled');
    const audit = bot.audit().filter((a) => a.approval_id === card.approvalId);
    expect(audit.some((a) => a.actor === 'U0STRANGER' && a.verdict === 'refused')).toBe(true);
    expect(audit.some((a) => a.event === 'cancel')).toBe(true);
    expect(audit.some((a) => a.event === 'execute-step')).toBe(false);
  });

  it('50 concurrent Approve clicks plus a redelivered envelope execute exactly once', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' });
    await bot.status();
    // Incident 1's own card: the failover thread (nginx down moved the VIP) offers the same fix.
    const card = await bot.card('Restart nginx on pi-a', 0, await bot.incidentRoot('Incident 1'));
    const clicks = Array.from({ length: 50 }, (_, i) =>
      bot.click(i % 2 === 0 ? 'U0APPROVER1' : 'U0APPROVER2', card),
    );
    const first = clicks[0];
    if (first === undefined) throw new Error('no click');
    clicks.push(emu.redeliver(first.envelopeId));
    await Promise.all(clicks.map((c) => c.ack));
    expect(await bot.outcome(card)).toBe('succeeded');
    // Every click decided (the redelivery is dropped before any decision): no run can start later.
    await emu.waitFor(
      () => bot.auditOf(card.approvalId).filter((a) => a.event === 'click-approve').length === 50,
      30_000,
      'all 50 clicks decided',
    );
    const runs = bot
      .auditOf(card.approvalId)
      .filter((a) => a.state_before !== 'running' && a.state_after === 'running');
    expect(runs).toHaveLength(1);
    const steps = bot.audit().filter((a) => a.approval_id === card.approvalId && a.event === 'execute-step');
    expect(steps).toHaveLength(1);
    faults.length = 0;
  });

  it('SIGKILL during an execution: after restart the approval is interrupted, nothing re-runs, the thread says so', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' });
    await bot.status();
    const root = await bot.incidentRoot('Incident 1');
    // Incident 1's own card: the failover thread (nginx down moved the VIP) offers the same fix.
    const card = await bot.card('Restart nginx on pi-a', 0, root);
    await lab.execOk('pi-a', 'echo 6 > /etc/okome/lab-slow-restart');
    try {
      await bot.click('U0APPROVER1', card).ack;
      await emu.waitFor(
        () => bot.approvalState(card.approvalId) === 'running',
        30_000,
        'the approval to be running',
      );
      await bot.kill();
    } finally {
      await lab.execOk('pi-a', 'rm -f /etc/okome/lab-slow-restart');
    }
    await bot.start();
    await emu.waitFor(
      () => bot.approvalState(card.approvalId) === 'interrupted',
      20_000,
      'interrupted after restart',
    );
    await emu.waitFor(
      () => threadTexts(root).some((t) => /interrupted/i.test(t)),
      20_000,
      'a notice in the thread',
    );
    // Recovery is a start-up step: once it is audited and the outbox is drained, nothing is left to run.
    await emu.waitFor(
      () => bot.auditOf(card.approvalId).some((a) => a.event === 'crash-recovery'),
      20_000,
      'the crash recovery audited',
    );
    await bot.outboxDrained();
    const steps = bot.audit().filter((a) => a.approval_id === card.approvalId && a.event === 'execute-step');
    expect(steps).toHaveLength(0);
    expect(bot.audit().some((a) => a.approval_id === card.approvalId && a.event === 'crash-recovery')).toBe(
      true,
    );
    await revertAll();
  });

  it('a host key changed after the diagnosis: nothing runs, the re-check says why', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' });
    await bot.status();
    // Incident 1's own card: the failover thread (nginx down moved the VIP) offers the same fix.
    const card = await bot.card('Restart nginx on pi-a', 0, await bot.incidentRoot('Incident 1'));
    await fault(lab, 'host-key-change', { node: 'pi-a' });
    await bot.click('U0APPROVER1', card).ack;
    expect(await bot.outcome(card)).toBe('cancelled');
    expect(await lab.unitState('pi-a', 'nginx')).not.toBe('active');
    const audit = bot.audit().filter((a) => a.approval_id === card.approvalId);
    expect(audit.some((a) => a.event === 'cancel' && /host key/i.test(a.reason))).toBe(true);
    await revertAll();
  });
});
