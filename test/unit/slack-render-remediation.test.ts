import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type LoadedConfig, parseConfig } from '../../src/config/load-config.js';
import { newApproval } from '../../src/domain/approval.js';
import { cardInfoOf } from '../../src/remediation/approval-presenter.js';
import { executePlan } from '../../src/remediation/execute.js';
import {
  type ActionPlan,
  actionTargetsNode,
  pinnedCommands,
  planAction,
} from '../../src/remediation/plan.js';
import { renderApprovalCard, renderExecution } from '../../src/slack/render/approval-card.js';
import { buildBotConfig } from '../support/lab/bot-config.js';
import { checkMessage } from '../support/slack-emulator/block-kit-limits.js';

const T0 = Date.UTC(2026, 10, 29, 3, 12, 7);
const example = parseConfig(
  readFileSync(join(import.meta.dirname, '../../config/okome.example.yml'), 'utf8'),
  'okome.example.yml',
);
const lab = parseConfig(
  stringify(
    buildBotConfig({
      privateKeyPath: '/dev/null',
      hostKeys: { 'pi-a': `SHA256:${'A'.repeat(43)}`, 'pi-b': `SHA256:${'B'.repeat(43)}` },
      storePath: '/dev/null',
    }),
  ),
  'lab.yml',
);

/** What the approvals service builds from a plan (no global dry-run here). */
const cardInfo = (plan: ActionPlan) => cardInfoOf(plan);

function approvalFor(plan: ActionPlan) {
  return newApproval({
    id: 'ap_aaaaaaaaaaaaaaaaaaaa',
    incidentId: 7,
    actionId: plan.actionId,
    targets: plan.nodes.map((n) => n.node),
    commands: pinnedCommands(plan),
    requiredApprovals: plan.requiredApprovals,
    requester: 'U0REQUESTER',
    now: T0,
    ttlMs: 900_000,
  });
}

/** Every plan a configuration can offer: each action on each node it targets, and on all of them. */
function everyPlan(config: LoadedConfig): ActionPlan[] {
  const plans: ActionPlan[] = [];
  for (const action of config.actions) {
    const targets = config.nodes.filter((n) => actionTargetsNode(action, n)).map((n) => n.name);
    for (const nodes of [...targets.map((t) => [t]), targets]) {
      const r = planAction({ actionId: action.id, nodes }, config);
      if (!r.ok) throw new Error(r.reason);
      plans.push(r.plan);
    }
  }
  return plans;
}

type Button = { text: { text: string }; confirm?: { title: { text: string } } };
function buttonsOf(blocks: readonly object[]): Button[] {
  return blocks.flatMap((b) =>
    'type' in b && b.type === 'actions' && 'elements' in b ? (b.elements as Button[]) : [],
  );
}

describe('approval card buttons', () => {
  it.each([
    ['config/okome.example.yml', example],
    ['the lab configuration', lab],
  ])('every action of %s fits its button text in 75 characters, unclipped', (_name, config) => {
    const plans = everyPlan(config);
    expect(plans.length).toBeGreaterThanOrEqual(config.actions.length * 2);
    for (const plan of plans) {
      const approval = approvalFor(plan);
      // With the plan's short label (the flow) and without it (the id-derived default).
      const { shortLabel: _, ...withoutShort } = cardInfo(plan);
      for (const info of [cardInfo(plan), withoutShort]) {
        const card = renderApprovalCard(approval, info, { buttons: true });
        const buttons = buttonsOf(card.blocks);
        expect(buttons).toHaveLength(2);
        for (const b of buttons) {
          expect(b.text.text.length, b.text.text).toBeLessThanOrEqual(75);
          expect(b.text.text).not.toContain('…');
          if (b.confirm !== undefined) expect(b.confirm.title.text).not.toContain('…');
        }
        const verdict = checkMessage(card);
        expect(verdict.ok ? [] : verdict.errors).toEqual([]);
        // The body still says every step.
        expect(JSON.stringify(card.blocks)).toContain(plan.details[0] ?? '');
      }
    }
  });

  it('disable chaos: a short button, the full description in the body (golden)', async () => {
    // The lab's addresses: fixtures never name the real cache layer's.
    const r = planAction({ actionId: 'disable-chaos', nodes: ['pi-a'] }, lab);
    if (!r.ok) throw new Error(r.reason);
    const card = renderApprovalCard(approvalFor(r.plan), cardInfo(r.plan), { buttons: true });
    expect(buttonsOf(card.blocks)[0]?.text.text).toBe('Approve: disable chaos on pi-a');
    expect(JSON.stringify(card.blocks)).toContain('Remove the chaos flag, flush iptables, restart nginx');
    await expect(JSON.stringify(card, null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/approval-card-disable-chaos.json',
    );
  });
});

describe('execution report', () => {
  it('says its outcome, duration and approvers once in its header (golden)', async () => {
    const r = planAction({ actionId: 'restart-nginx', nodes: ['pi-a'] }, example);
    if (!r.ok) throw new Error(r.reason);
    let now = T0;
    // The flow's default verification for restart-nginx.
    const plan = { ...r.plan, verify: { checks: ['vip-http', 'service'], windowMs: 10_000 } };
    const report = await executePlan(plan, {
      shell: {
        async exec() {
          now += 120;
          return {
            exitCode: 0,
            signal: undefined,
            stdout: '',
            stderr: '',
            durationMs: 120,
            truncated: false,
          };
        },
      },
      redis: { async flushdb() {} },
      async verify() {
        now += 30;
        return { ok: true, details: 'nginx active; VIP answers 200' };
      },
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
      stepTimeoutMs: 30_000,
      redisTimeoutMs: 1500,
    });
    const [first, ...rest] = renderExecution(report, '<@U0APPROVER1>');
    expect(rest).toEqual([]);
    if (first === undefined) throw new Error('no message');
    const header = (first.blocks[0] as { text: { text: string } }).text.text;
    expect(header).toBe(
      ':white_check_mark: *restart nginx on pi-a: 1 step(s) ran, verified* (0.2 s, approved by <@U0APPROVER1>)',
    );
    expect(header).not.toContain('✅');
    await expect(JSON.stringify(first, null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/execution-restart-nginx.json',
    );
  });
});
