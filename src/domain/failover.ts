import { type CheckResult, factsOf } from './check-result.js';
import type { ClassifyAction, ClassifyNode, Incident, ProposedAction } from './classify.js';
import type { IncidentNumber } from './runbook.js';

/**
 * Why the VIP left a node, from what the bot can see of that node once the VIP has settled.
 * Pure: the alert use case gathers the evidence (checks on the old holder, the actions the bot
 * is running) and says the verdict.
 *
 * What the bot can tell apart from outside: a node that answers nothing (SSH and HTTP time
 * out, or the host is unreachable: link, power, SD card or kernel: not which), a node that
 * answers with resets (up, daemons down), and a node that answers SSH (then keepalived's and
 * nginx's unit states say which stopped).
 */

export const failoverCauseKinds = [
  'unreachable',
  'refusing',
  'keepalived-down',
  'nginx-down',
  'planned',
  'unexplained',
] as const;
export type FailoverCauseKind = (typeof failoverCauseKinds)[number];

export interface FailoverCause {
  readonly kind: FailoverCauseKind;
  /** The old holder. */
  readonly node: string;
  /** One sentence for people. */
  readonly summary: string;
  /** Check ids the verdict rests on. */
  readonly evidence: readonly string[];
}

/** How a probe of a node ended, as far as the verdict cares. */
export type Answer = 'answered' | 'refused' | 'silent' | 'unknown';

/** A check's answer: a judgement (even a failing one) is an answer; a reset is a refusal. */
export function answerOf(result: CheckResult | undefined): Answer {
  if (result === undefined) return 'unknown';
  if (result.status === 'ok' || result.status === 'warn' || result.status === 'fail') return 'answered';
  if (result.status === 'unknown') return 'unknown';
  const ssh = factsOf(result, 'ssh');
  const transport = factsOf(result, 'transport');
  return ssh?.refused === true || transport?.refused === true ? 'refused' : 'silent';
}

export interface FailoverEvidence {
  readonly from: string;
  readonly to: string;
  /** Checks run on the old holder after the VIP settled (ssh, node-http, service). */
  readonly checks: readonly CheckResult[];
  /** Actions the bot itself is running (or was, when the VIP moved), with their nodes. */
  readonly running: readonly ProposedAction[];
}

const NOT_RUNNING = new Set(['inactive', 'failed', 'dead']);

function serviceState(checks: readonly CheckResult[], service: string, node: string): string | undefined {
  return factsOf(
    checks.find((c) => c.id === `service:${service}@${node}`),
    'service',
  )?.state;
}

/** The cause, in the order that decides it: the bot's own work, then reachability, then units. */
export function classifyFailover(e: FailoverEvidence): FailoverCause {
  const { from: node, checks } = e;
  const find = (id: string) => checks.find((c) => c.id === id);
  const sshId = `ssh@${node}`;
  const httpId = `node-http@${node}`;
  const present = (ids: readonly string[]) => ids.filter((id) => find(id) !== undefined);
  const own = e.running.find((a) => a.nodes.includes(node));
  if (own !== undefined) {
    return {
      kind: 'planned',
      node,
      summary: `planned: the bot is running ${own.actionId} on ${node}; the VIP moved to ${e.to} meanwhile`,
      evidence: [],
    };
  }
  const ssh = answerOf(find(sshId));
  const http = answerOf(find(httpId));
  const answers = [ssh, http];
  if (answers.every((a) => a === 'silent')) {
    return {
      kind: 'unreachable',
      node,
      summary: `${node} is unreachable: SSH and HTTP get no answer (link, power or SD card: the bot cannot tell which)`,
      evidence: present([sshId, httpId]),
    };
  }
  if (ssh !== 'answered' && answers.includes('refused') && !answers.includes('answered')) {
    const refused = [ssh === 'refused' ? 'SSH' : undefined, http === 'refused' ? 'HTTP' : undefined]
      .filter((x) => x !== undefined)
      .join(' and ');
    return {
      kind: 'refusing',
      node,
      summary: `${node} is up but refuses ${refused} (connection reset): its daemons are down, not the Pi`,
      evidence: present([sshId, httpId]),
    };
  }
  const keepalived = serviceState(checks, 'keepalived', node);
  if (keepalived !== undefined && NOT_RUNNING.has(keepalived)) {
    return {
      kind: 'keepalived-down',
      node,
      summary: `keepalived is ${keepalived} on ${node}: it gave up the VIP; ${node} itself answers`,
      evidence: present([`service:keepalived@${node}`, sshId]),
    };
  }
  const nginx = serviceState(checks, 'nginx', node);
  if ((nginx !== undefined && nginx !== 'active') || (ssh === 'answered' && http !== 'answered')) {
    return {
      kind: 'nginx-down',
      node,
      summary: `nginx is ${nginx ?? 'not answering'} on ${node}: keepalived's track script failed and gave the VIP away`,
      evidence: present([`service:nginx@${node}`, httpId]),
    };
  }
  return {
    kind: 'unexplained',
    node,
    summary: `${node} answers and its keepalived and nginx run: no cause seen (a flap?)`,
    evidence: present([sshId, httpId, `service:keepalived@${node}`, `service:nginx@${node}`]),
  };
}

export interface FailoverIncidentContext {
  readonly key: string;
  readonly to: string;
  readonly nodes: readonly ClassifyNode[];
  readonly actions: readonly ClassifyAction[];
}

/** What the thread offers per cause: the catalogue action narrowed to the old holder, or none. */
const CAUSE_ACTION: Readonly<Partial<Record<FailoverCauseKind, string>>> = {
  'keepalived-down': 'restart-keepalived',
  'nginx-down': 'restart-nginx',
};

function adviceOf(cause: FailoverCause, to: string): { advice: string[]; followUps: string[] } {
  const n = cause.node;
  switch (cause.kind) {
    case 'unreachable':
      return {
        advice: [
          `Runbook, incident 4: nothing immediately — ${to} holds the VIP and serves.`,
          `Check ${n}'s power and link first; if it stays dead, reflash it with the golden image (it boots as the new cold spare).`,
        ],
        followUps: ['Replace the SD card if this repeats', 'Check the power supply (common Pi failure)'],
      };
    case 'refusing':
      return {
        advice: [
          `${n} is up, only its daemons are down: restart them from its console (\`sudo systemctl restart ssh nginx keepalived\`).`,
          `${to} holds the VIP and serves meanwhile.`,
        ],
        followUps: [`Find out why the daemons on ${n} died: \`journalctl -b\``],
      };
    case 'keepalived-down':
      return {
        advice: [`Restart keepalived on ${n}: with preemption the VIP moves back to ${n} once it runs.`],
        followUps: [`Inspect keepalived logs on ${n}: \`journalctl -u keepalived --since "10 minutes ago"\``],
      };
    case 'nginx-down':
      return {
        advice: [
          `Restart nginx on ${n}: once its health check passes, the VIP moves back to ${n} (keepalived's track script).`,
        ],
        followUps: [`Look at why nginx stopped on ${n}: \`journalctl -u nginx\``],
      };
    case 'planned':
      return {
        advice: ['Nothing to do: the VIP moves back when the bot’s action has finished.'],
        followUps: [],
      };
    case 'unexplained':
      return {
        advice: [
          `Nothing to restart. ${to} serves; read keepalived's journal on both Pis for the transition.`,
        ],
        followUps: [],
      };
  }
}

/** The runbook incident a cause belongs to: 4 (dead Pi), 1 (nginx), 3 (VIP) otherwise. */
export const CAUSE_NUMBER: Readonly<Record<FailoverCauseKind, IncidentNumber>> = {
  unreachable: '4',
  refusing: '3',
  'keepalived-down': '3',
  'nginx-down': '1',
  planned: '3',
  unexplained: '3',
};

/** The failover incident as a diagnosis: its summary is the cause, its action the cause's fix. */
export function failoverIncident(cause: FailoverCause, ctx: FailoverIncidentContext): Incident {
  const actionId = CAUSE_ACTION[cause.kind];
  const action = ctx.actions.find((a) => a.id === actionId);
  const node = ctx.nodes.find((n) => n.name === cause.node);
  const allowed =
    action !== undefined &&
    node !== undefined &&
    (action.targets.nodes?.includes(node.name) === true ||
      node.roles.some((r) => action.targets.roles?.includes(r) === true));
  const { advice, followUps } = adviceOf(cause, ctx.to);
  return {
    number: CAUSE_NUMBER[cause.kind],
    key: ctx.key,
    title: `VIP failover from ${cause.node}`,
    nodes: [cause.node],
    evidence: cause.evidence,
    summary: cause.summary,
    // The card says what the fix does to the VIP (it moves back), not only what it runs.
    actions:
      allowed && actionId !== undefined
        ? [{ actionId, nodes: [cause.node], ...(advice[0] === undefined ? {} : { why: advice[0] }) }]
        : [],
    held: undefined,
    advice,
    followUps,
  };
}

// ── Settling ────────────────────────────────────────────────────────────────────────────────

/** One look at the VIP while it settles. */
export interface SettleSample {
  /** Who holds the VIP; undefined when it could not be seen. */
  readonly holders: readonly string[] | undefined;
  /** keepalived's unit state per VIP node (undefined: not seen, e.g. the node is unreachable). */
  readonly keepalived: Readonly<Record<string, string | undefined>>;
}

export type SettleVerdict =
  | { readonly verdict: 'settled' }
  | { readonly verdict: 'waiting' }
  | { readonly verdict: 'gave-up'; readonly reason: string };

const TRANSITIONAL = new Set(['activating', 'deactivating', 'reloading']);

const fingerprint = (s: SettleSample) =>
  JSON.stringify([
    s.holders,
    Object.keys(s.keepalived)
      .sort()
      .map((k) => [k, s.keepalived[k] ?? null]),
  ]);

/**
 * Settled: the last two looks agree, one node holds the VIP, and no keepalived is between
 * states. Past `settleMs` since the move the diagnosis goes ahead anyway, saying so.
 */
export function settleVerdict(
  samples: readonly SettleSample[],
  timing: { readonly startedAt: number; readonly now: number; readonly settleMs: number },
): SettleVerdict {
  const last = samples.at(-1);
  const before = samples.at(-2);
  if (
    last !== undefined &&
    before !== undefined &&
    last.holders?.length === 1 &&
    fingerprint(last) === fingerprint(before) &&
    !Object.values(last.keepalived).some((s) => s !== undefined && TRANSITIONAL.has(s))
  ) {
    return { verdict: 'settled' };
  }
  if (timing.now - timing.startedAt < timing.settleMs) return { verdict: 'waiting' };
  const holders = last?.holders;
  return {
    verdict: 'gave-up',
    reason: `not settled after ${Math.round(timing.settleMs / 1000)} s (VIP ${
      holders === undefined
        ? 'holder unknown'
        : holders.length === 0
          ? 'held by no node'
          : `held by ${holders.join(', ')}`
    })`,
  };
}
