import { type LoadedConfig, nodeCommand, type ResolvedNode } from '../config/load-config.js';
import {
  type ActionConfig,
  type ActionStep,
  type CommandPurpose,
  servicePurposes,
} from '../config/schema.js';
import type { PinnedCommand } from '../domain/approval.js';
import type { ProposedAction } from '../domain/classify.js';

/**
 * ProposedAction + configuration → the exact steps, per node, that an approval will run.
 * Every command string comes from configuration (`nodeCommand`): the plan takes node names
 * and an action id, validates both against the catalogue, and nothing else.
 */

/** A `service` value that means "every service this node runs" (see the report's schema proposal). */
export const EACH_NODE_SERVICE = '*';

export type PlannedStep =
  | {
      readonly kind: 'ssh';
      readonly node: string;
      readonly purpose: CommandPurpose;
      readonly service: string | undefined;
      /** Exactly what is sent over SSH. */
      readonly command: string;
      /** For buttons: "restart nginx". */
      readonly label: string;
      /** For confirm dialogs and the thread: "sudo systemctl restart nginx on pi-a (10.86.0.20)". */
      readonly detail: string;
    }
  | {
      readonly kind: 'redis-flushdb';
      readonly node: string;
      /** The Redis the bot is configured with, as shown to people. */
      readonly command: string;
      readonly label: string;
      readonly detail: string;
    };

export interface NodePlan {
  readonly node: string;
  readonly address: string;
  readonly holdsVip: boolean;
  readonly steps: readonly PlannedStep[];
}

export interface ActionPlan {
  readonly actionId: string;
  readonly title: string;
  readonly risk: ActionConfig['risk'];
  readonly requiredApprovals: number;
  /** One node after the other, the next only once the previous one verified. */
  readonly sequential: boolean;
  /** The action is configured dry-run: show, never run. */
  readonly dryRun: boolean;
  readonly cooldownMs: number;
  readonly verify: { readonly checks: readonly string[]; readonly windowMs: number };
  readonly nodes: readonly NodePlan[];
  /** What it does, step by step, for the card's body: "remove the chaos flag, flush iptables, … on pi-a". */
  readonly label: string;
  /** The action's short title and nodes, for buttons: "disable chaos on pi-a" (see shortActionLabel). */
  readonly shortLabel: string;
  /** One line per step, for the confirm dialog: "sudo systemctl restart nginx on pi-a (10.86.0.20)". */
  readonly details: readonly string[];
  /** Steps left out (a service the node does not run) and other things worth saying. */
  readonly notes: readonly string[];
}

export type PlanResult =
  | { readonly ok: true; readonly plan: ActionPlan }
  | { readonly ok: false; readonly reason: string };

export type PlanConfig = Pick<LoadedConfig, 'nodes' | 'actions' | 'redis'>;

const PURPOSE_LABEL: Readonly<Record<CommandPurpose, string>> = {
  serviceState: 'check',
  serviceRestart: 'restart',
  serviceStop: 'stop',
  serviceStart: 'start',
  vipOwnership: 'show VIP ownership',
  disk: 'show disk usage',
  memory: 'show memory',
  chaosFlag: 'check the chaos flag',
  chaosFlagRemove: 'remove the chaos flag',
  firewallRules: 'list iptables rules',
  firewallFlush: 'flush iptables',
  nginxConfig: 'dump the nginx config',
  accessLogTail: 'tail the access log',
  journalTail: 'tail the keepalived journal',
  prewarmTimer: 'show the prewarm timer',
  linkState: 'show network links',
};

/** Whether an action may run on a node, by its `targets` (node names or roles). */
export function actionTargetsNode(action: ActionConfig, node: ResolvedNode): boolean {
  return (
    action.targets.nodes?.includes(node.name) === true ||
    node.roles.some((r) => action.targets.roles?.includes(r) === true)
  );
}

export interface ExpandedSteps {
  readonly steps: readonly PlannedStep[];
  readonly notes: readonly string[];
}

/**
 * An action's steps on one node. A service step for a service the node does not run expands
 * into nothing (with a note): `disable-chaos` lists nginx, redis-server and keepalived, and each
 * node restarts only what it runs. `EACH_NODE_SERVICE` expands into every service of the node.
 */
export function expandSteps(
  action: ActionConfig,
  node: ResolvedNode,
  redis: PlanConfig['redis'],
): ExpandedSteps {
  const steps: PlannedStep[] = [];
  const notes: string[] = [];
  const where = `${node.name} (${node.address})`;
  for (const step of action.steps as readonly ActionStep[]) {
    if ('redis' in step) {
      const target = `redis://${redis.host}:${redis.port}/${redis.db}`;
      steps.push({
        kind: 'redis-flushdb',
        node: node.name,
        command: `FLUSHDB ${target}`,
        label: 'flush Redis',
        detail: `FLUSHDB on Redis ${redis.host}:${redis.port} db ${redis.db}`,
      });
      continue;
    }
    const services = !servicePurposes.has(step.run)
      ? [undefined]
      : step.service === EACH_NODE_SERVICE
        ? node.services
        : [step.service];
    for (const service of services) {
      if (service !== undefined && !node.services.includes(service)) {
        notes.push(
          `${node.name} does not run ${service}: "${PURPOSE_LABEL[step.run]} ${service}" skipped there`,
        );
        continue;
      }
      const command = nodeCommand(node, step.run, service);
      const label = service === undefined ? PURPOSE_LABEL[step.run] : `${PURPOSE_LABEL[step.run]} ${service}`;
      steps.push({
        kind: 'ssh',
        node: node.name,
        purpose: step.run,
        service,
        command,
        label,
        detail: `${command} on ${where}`,
      });
    }
  }
  return { steps, notes };
}

/** "restart nginx and keepalived": consecutive restarts read as one phrase. */
function phrase(steps: readonly PlannedStep[]): string {
  const parts: string[] = [];
  let restarts: string[] = [];
  const flush = () => {
    if (restarts.length > 0) parts.push(`restart ${listed(restarts, 'and')}`);
    restarts = [];
  };
  for (const s of steps) {
    if (s.kind === 'ssh' && s.purpose === 'serviceRestart' && s.service !== undefined) {
      restarts.push(s.service);
      continue;
    }
    flush();
    parts.push(s.label);
  }
  flush();
  return parts.join(', ');
}

function listed(items: readonly string[], conjunction: string): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${conjunction} ${items.at(-1) ?? ''}`;
}

export function planAction(proposed: ProposedAction, config: PlanConfig): PlanResult {
  const refuse = (reason: string): PlanResult => ({ ok: false, reason });
  const action = config.actions.find((a) => a.id === proposed.actionId);
  if (action === undefined) return refuse(`no action "${proposed.actionId}" in the catalogue`);
  if (proposed.nodes.length === 0) return refuse(`${action.id}: no target node`);
  if (new Set(proposed.nodes).size !== proposed.nodes.length) {
    return refuse(`${action.id}: a node is named twice (${proposed.nodes.join(', ')})`);
  }
  const nodes: NodePlan[] = [];
  const notes: string[] = [];
  let flushPlanned = false;
  for (const name of proposed.nodes) {
    const node = config.nodes.find((n) => n.name === name);
    if (node === undefined) return refuse(`${action.id}: "${name}" is not a configured node`);
    if (!actionTargetsNode(action, node)) {
      const targets = [
        action.targets.nodes ? `nodes ${action.targets.nodes.join(', ')}` : undefined,
        action.targets.roles ? `roles ${action.targets.roles.join(', ')}` : undefined,
      ]
        .filter((t) => t !== undefined)
        .join('; ');
      return refuse(`${action.id} may not run on ${name}: its targets are ${targets}`);
    }
    let expanded: ExpandedSteps;
    try {
      expanded = expandSteps(action, node, config.redis);
    } catch (error) {
      return refuse(`${action.id} on ${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
    notes.push(...expanded.notes);
    // There is one Redis: flushing it once is the action, whichever backend node was named.
    const steps = expanded.steps.filter((s) => {
      if (s.kind !== 'redis-flushdb') return true;
      if (flushPlanned) {
        notes.push(`FLUSHDB runs once (one Redis); not again for ${name}`);
        return false;
      }
      flushPlanned = true;
      return true;
    });
    if (expanded.steps.length === 0) {
      return refuse(`${action.id} has nothing to run on ${name}: ${expanded.notes.join('; ') || 'no steps'}`);
    }
    nodes.push({ node: name, address: node.address, holdsVip: node.holdsVip, steps });
  }

  // Restarting the same thing on every VIP holder at once would drop the VIP.
  const vipRestarts = nodes.filter(
    (n) => n.holdsVip && n.steps.some((s) => s.kind === 'ssh' && s.purpose === 'serviceRestart'),
  );
  let sequential = action.sequential;
  if (!sequential && vipRestarts.length >= 2) {
    sequential = true;
    notes.push(
      `one node after the other: ${vipRestarts.map((n) => n.node).join(' and ')} both hold the VIP, so they never restart together`,
    );
  }

  const phrases = nodes.map((n) => phrase(n.steps));
  const names = nodes.map((n) => n.node);
  const first = phrases[0] ?? action.title;
  // Nodes that do different things each get their own phrase: the card says every step.
  const label = phrases.every((p) => p === first)
    ? `${first} on ${listed(names, sequential ? 'then' : 'and')}`
    : nodes.map((n, i) => `${phrases[i] ?? ''} on ${n.node}`).join('; ');
  return {
    ok: true,
    plan: {
      actionId: action.id,
      title: action.title,
      risk: action.risk,
      requiredApprovals: action.approvals,
      sequential,
      dryRun: action.dryRun,
      cooldownMs: action.cooldownMs,
      verify: { checks: action.verify.checks, windowMs: action.verify.windowMs },
      nodes,
      label,
      shortLabel: shortActionLabel(action.title, names, sequential),
      details: nodes.flatMap((n) => n.steps.map((s) => s.detail)),
      notes,
    },
  };
}

/** Slack's button text limit (75) less "Approve: ". */
export const SHORT_LABEL_MAX = 66;

/**
 * "disable chaos on pi-a and pi-b": the title (its first letter lowered unless it starts an
 * acronym) and the nodes, never clipped: "on 3 nodes", then the title alone, when the names do
 * not fit. Titles are at most 60 characters, so the last form always fits.
 */
export function shortActionLabel(title: string, nodes: readonly string[], sequential = false): string {
  const head = /^[A-Z][a-z]/.test(title) ? title.charAt(0).toLowerCase() + title.slice(1) : title;
  const forms = [
    `${head} on ${listed(nodes, sequential ? 'then' : 'and')}`,
    `${head} on ${nodes.length} nodes`,
    head,
  ];
  return forms.find((f) => f.length <= SHORT_LABEL_MAX) ?? head.slice(0, SHORT_LABEL_MAX);
}

/** The commands an approval pins: shown in the confirm dialog, written to the audit. */
export function pinnedCommands(plan: ActionPlan): PinnedCommand[] {
  return plan.nodes.flatMap((n) => n.steps.map((s) => ({ node: n.node, command: s.command })));
}

/**
 * Whether the plan made now still runs exactly what was approved; a reason when not (the
 * configuration was changed and reloaded since the buttons were offered).
 */
export function commandsChanged(pinned: readonly PinnedCommand[], plan: ActionPlan): string | undefined {
  const now = pinnedCommands(plan);
  const same =
    now.length === pinned.length &&
    now.every((c, i) => c.node === pinned[i]?.node && c.command === pinned[i]?.command);
  if (same) return undefined;
  const show = (cs: readonly PinnedCommand[]) => cs.map((c) => `${c.node}: ${c.command}`).join('; ');
  return `the configured commands changed since approval was asked: approved [${show(pinned)}], now [${show(now)}]`;
}

/** The action restarts keepalived, so the VIP may move: the VIP holder must be as diagnosed. */
export function touchesVip(plan: ActionPlan): boolean {
  return plan.nodes.some((n) =>
    n.steps.some((s) => s.kind === 'ssh' && s.purpose === 'serviceRestart' && s.service === 'keepalived'),
  );
}
