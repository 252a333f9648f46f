import {
  type CheckResult,
  type CheckStatus,
  couldNotJudge,
  type Facts,
  type FactsOf,
  factsOf,
} from './check-result.js';
import { answerOf } from './failover.js';
import { incidentKeys } from './incident.js';
import { type IncidentNumber, runbook } from './runbook.js';

/**
 * Check results → the runbook incidents they show, table-driven, under the golden rules:
 * isolation is judged first (a bot that reaches nothing learns nothing about the cache layer),
 * then the orchestrator before any cache node and, when it is the cause, no cache-node action
 * is proposed; a dead frontend with the VIP on the spare gets advice, not actions.
 */

export interface ClassifyNode {
  readonly name: string;
  readonly roles: readonly string[];
  readonly services: readonly string[];
  readonly holdsVip: boolean;
}

export interface ClassifyAction {
  readonly id: string;
  readonly targets: {
    readonly nodes?: readonly string[] | undefined;
    readonly roles?: readonly string[] | undefined;
  };
}

export interface ClassifyContext {
  readonly nodes: readonly ClassifyNode[];
  readonly actions: readonly ClassifyAction[];
  readonly vipAddress: string;
  readonly redisHitRatioThreshold: number;
}

export interface ProposedAction {
  readonly actionId: string;
  /** Resolved at diagnosis and pinned: the approval runs on exactly these nodes. */
  readonly nodes: readonly string[];
  /** What this offer does beyond its plan, said on its card (a failover: the VIP moves back). */
  readonly why?: string;
}

export interface Incident {
  readonly number: IncidentNumber;
  /** Incident number + affected nodes: an open incident with the same key is reused. */
  readonly key: string;
  readonly title: string;
  readonly nodes: readonly string[];
  /** Ids of the check results that show it. */
  readonly evidence: readonly string[];
  readonly summary: string;
  readonly actions: readonly ProposedAction[];
  /** Actions the runbook would offer but a golden rule holds back, with the reason. */
  readonly held: { readonly actions: readonly ProposedAction[]; readonly reason: string } | undefined;
  readonly advice: readonly string[];
  readonly followUps: readonly string[];
}

export type VipState =
  | { readonly kind: 'single'; readonly holder: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'split'; readonly holders: readonly string[] }
  | { readonly kind: 'unknown'; readonly reason: string };

/** The bot reached nothing: its own network or configuration, not the cache layer, is in question. */
export interface Isolation {
  readonly summary: string;
  /** What got no answer, in words. */
  readonly detail: string;
  /** The probes that got no answer: the orchestrator (if checked), the VIP, each Pi's SSH and HTTP. */
  readonly evidence: readonly string[];
  readonly advice: readonly string[];
}

export interface Classification {
  readonly vip: VipState;
  /** Set when nothing answered; then there are no incidents (no Pi is declared dead). */
  readonly isolation: Isolation | undefined;
  readonly incidents: readonly Incident[];
}

interface Finding {
  readonly nodes: readonly string[];
  readonly evidence: readonly string[];
  readonly summary: string;
  readonly title?: string;
  /** Nodes each proposed action should run on; undefined = the incident's nodes. */
  readonly actionNodes?: readonly string[];
  readonly advice?: readonly string[];
  /** Instead of the runbook card's follow-ups. */
  readonly followUps?: readonly string[];
}

class View {
  private readonly byId: ReadonlyMap<string, CheckResult>;
  constructor(
    readonly results: readonly CheckResult[],
    readonly ctx: ClassifyContext,
  ) {
    this.byId = new Map(results.map((r) => [r.id, r]));
  }
  get(id: string): CheckResult | undefined {
    return this.byId.get(id);
  }
  facts<K extends Facts['kind']>(id: string, kind: K): FactsOf<K> | undefined {
    return factsOf(this.get(id), kind);
  }
  failing(id: string): boolean {
    const r = this.get(id);
    return r !== undefined && (r.status === 'fail' || r.status === 'unreachable' || r.status === 'timeout');
  }
  /** The probe ran and nothing answered it (a refusal or an error status is an answer of sorts). */
  noAnswer(id: string): boolean {
    const r = this.get(id);
    return r !== undefined && NO_ANSWER.has(r.status);
  }
  nodesWith(pred: (n: ClassifyNode) => boolean): readonly ClassifyNode[] {
    return this.ctx.nodes.filter(pred);
  }
  /** Evidence ids that exist in this report (a filtered `/okome check` may lack some). */
  present(ids: readonly string[]): string[] {
    return ids.filter((id) => this.byId.has(id));
  }
}

const CACHED_STATES = new Set(['HIT', 'UPDATING', 'STALE']);
const NO_ANSWER: ReadonlySet<CheckStatus> = new Set(['unreachable', 'timeout']);
const UPSTREAM_FAILURE = new Set([502, 503, 504]);

export function vipState(view: { get(id: string): CheckResult | undefined }): VipState {
  const owner = view.get('vip-owner');
  const facts = factsOf(owner, 'vip-owner');
  if (facts === undefined) return { kind: 'unknown', reason: owner?.summary ?? 'VIP ownership not checked' };
  const [first, ...others] = facts.holders;
  if (first === undefined) {
    return facts.unknown.length > 0
      ? { kind: 'unknown', reason: `no reachable node holds it; cannot see ${facts.unknown.join(', ')}` }
      : { kind: 'none' };
  }
  return others.length === 0 ? { kind: 'single', holder: first } : { kind: 'split', holders: facts.holders };
}

function orchestratorDown(v: View): Finding | undefined {
  const health = v.get('orch-health');
  const api = v.facts('vip-api', 'http');
  const ui = v.facts('vip-http', 'http');
  const healthFails = v.failing('orch-health');
  const apiFails = api !== undefined && UPSTREAM_FAILURE.has(api.status);
  const uiCached = ui !== undefined && ui.status < 400 && CACHED_STATES.has(ui.cacheStatus ?? '');
  if (!healthFails && !(apiFails && uiCached)) return undefined;
  const parts = [
    healthFails ? `orchestrator /health: ${health?.summary ?? 'failing'}` : undefined,
    apiFails ? `/api via VIP answers ${api.status}` : undefined,
    uiCached ? `UI still served from cache (${ui.cacheStatus})` : undefined,
  ].filter((p): p is string => p !== undefined);
  return {
    nodes: [],
    evidence: v.present(['orch-health', 'vip-api', 'vip-http']),
    summary: parts.join('; '),
  };
}

function vipNotResponding(v: View): Finding | undefined {
  const state = vipState(v);
  const vipNodes = v.nodesWith((n) => n.holdsVip).map((n) => n.name);
  const reachable = vipNodes.filter((n) => !v.failing(`ssh@${n}`));
  if (state.kind === 'split') {
    return {
      nodes: state.holders,
      title: 'VIP split brain',
      evidence: v.present(['vip-owner', ...state.holders.map((n) => `vip-addr@${n}`), 'vip-http']),
      summary: `SPLIT BRAIN: ${state.holders.join(' and ')} all hold ${v.ctx.vipAddress}`,
      actionNodes: reachable,
    };
  }
  const vipHttpFails = v.failing('vip-http');
  if (
    state.kind === 'none' ||
    (state.kind === 'unknown' && vipHttpFails && v.get('vip-owner') !== undefined)
  ) {
    return {
      nodes: vipNodes,
      evidence: v.present(['vip-owner', 'vip-http', ...vipNodes.map((n) => `keepalived-journal@${n}`)]),
      summary:
        state.kind === 'none'
          ? `no node holds the VIP ${v.ctx.vipAddress}${vipHttpFails ? ' and it does not answer' : ''}`
          : `the VIP ${v.ctx.vipAddress} does not answer and ${state.reason}`,
      actionNodes: reachable,
    };
  }
  return undefined;
}

/**
 * keepalived stopped or failed on a VIP node while the VIP itself is held (by the other node):
 * nothing is down for clients, but that node can neither take the VIP nor get it back, so the
 * restart is offered there (split brain and "no holder" are judged above and offer it already).
 */
function keepalivedStopped(v: View): Finding[] {
  const state = vipState(v);
  if (state.kind === 'split' || state.kind === 'none') return [];
  return v
    .nodesWith((n) => n.holdsVip && n.services.includes('keepalived'))
    .flatMap((n) => {
      const svc = v.facts(`service:keepalived@${n.name}`, 'service');
      if (svc === undefined || (svc.state !== 'inactive' && svc.state !== 'failed')) return [];
      const holder = state.kind === 'single' ? state.holder : undefined;
      return [
        {
          nodes: [n.name],
          title: 'keepalived stopped',
          evidence: v.present([`service:keepalived@${n.name}`, 'vip-owner']),
          summary: `keepalived is ${svc.state} on ${n.name}${
            holder !== undefined && holder !== n.name
              ? `: ${holder} holds the VIP; ${n.name} cannot take it back`
              : ''
          }`,
        },
      ];
    });
}

/** Neither SSH nor HTTP answers (a host-key mismatch means something answers: not dead). */
function piDead(v: View, node: string): boolean {
  return v.noAnswer(`ssh@${node}`) && v.failing(`node-http@${node}`);
}

/**
 * Every Pi dead and the VIP silent, while something else answered (isolation is judged before):
 * one incident, since the VIP, UI and Redis findings only restate it and no Pi can take a command.
 */
function everyPiDead(v: View): boolean {
  const nodes = v.ctx.nodes;
  const vipSilent = v.get('vip-http') === undefined || v.failing('vip-http');
  return nodes.length > 1 && vipSilent && nodes.every((n) => piDead(v, n.name));
}

function frontendDead(v: View): Finding[] {
  if (everyPiDead(v)) {
    const names = v.ctx.nodes.map((n) => n.name);
    const orchestratorAnswers = v.get('orch-health') !== undefined && !v.noAnswer('orch-health');
    return [
      {
        nodes: names,
        title: names.length === 2 ? 'Both Pis unreachable' : 'Every Pi unreachable',
        evidence: v.present([
          ...names.flatMap((n) => [`ssh@${n}`, `node-http@${n}`]),
          'vip-owner',
          'vip-http',
          'orch-health',
        ]),
        summary: `${names.join(' and ')} answer neither SSH nor HTTP and the VIP ${v.ctx.vipAddress} does not answer${
          orchestratorAnswers ? '; the orchestrator answers, so the bot can reach the network' : ''
        }`,
        actionNodes: [],
        advice: [
          'No cache action possible: no Pi can take a command, and the UI is down (no node serves the VIP).',
          'Both at once points at what they share: power, the switch, the cabling. Check those first.',
          'A Pi that stays dead once power and network are back: reflash it with the golden image.',
        ],
      },
    ];
  }
  const state = vipState(v);
  return v
    .nodesWith((n) => n.roles.includes('frontend'))
    .filter((n) => piDead(v, n.name))
    .map((n): Finding => {
      const spare = state.kind === 'single' && state.holder !== n.name ? state.holder : undefined;
      // A reset is an answer: the Pi is up and its daemons are down; reflashing would not help.
      const refused = [`ssh@${n.name}`, `node-http@${n.name}`].filter(
        (id) => answerOf(v.get(id)) === 'refused',
      );
      if (refused.length > 0) {
        return {
          nodes: [n.name],
          title: 'Frontend Pi refuses connections',
          evidence: v.present([`ssh@${n.name}`, `node-http@${n.name}`, 'vip-owner', 'vip-http']),
          summary: `${n.name} is up but refuses ${refused.map((id) => (id.startsWith('ssh@') ? 'SSH' : 'HTTP')).join(' and ')}: its daemons are down${spare ? `; the VIP is on ${spare}` : ''}`,
          actionNodes: [],
          advice: [
            `${n.name} is up, only its daemons are down: restart them from its console (\`sudo systemctl restart ssh nginx keepalived\`).`,
          ],
          followUps: [`Find out why the daemons on ${n.name} died: \`journalctl -b\``],
        };
      }
      return {
        nodes: [n.name],
        evidence: v.present([`ssh@${n.name}`, `node-http@${n.name}`, 'vip-owner', 'vip-http']),
        summary: `${n.name} answers neither SSH nor HTTP${spare ? `; the VIP is on ${spare}` : ''}`,
        advice: [
          spare
            ? `Nothing immediately: ${spare} holds the VIP and serves.`
            : 'Nothing immediately on the dead Pi.',
          `Reflash ${n.name} with the golden image; it boots as the new cold spare.`,
          'Check the SD card and the power supply.',
        ],
      };
    });
}

function uiSlowOrBlank(v: View): Finding[] {
  const down = v
    .nodesWith((n) => n.services.includes('nginx'))
    .filter((n) => {
      const svc = v.facts(`service:nginx@${n.name}`, 'service');
      return svc !== undefined && svc.state !== 'active';
    })
    .map((n) => n.name);
  const vip = v.get('vip-http');
  const vipBad = vip !== undefined && (v.failing('vip-http') || vip.status === 'warn');
  const state = vipState(v);
  if (down.length === 0) {
    // The VIP misbehaving with every nginx up: UI slow (or upstream load); nothing to restart.
    if (!vipBad || state.kind === 'none' || state.kind === 'split') return [];
    return [
      {
        nodes: state.kind === 'single' ? [state.holder] : [],
        evidence: v.present([
          'vip-http',
          'vip-canary',
          ...v.ctx.nodes.map((n) => `nginx-hit-ratio@${n.name}`),
        ]),
        summary: vip.summary,
        actionNodes: [],
      },
    ];
  }
  return down.map((name) => ({
    nodes: [name],
    evidence: v.present([`service:nginx@${name}`, 'vip-http', `node-http@${name}`, `prewarm-timer@${name}`]),
    summary: `nginx is ${v.facts(`service:nginx@${name}`, 'service')?.state ?? 'down'} on ${name}${
      state.kind === 'single' && state.holder === name ? ' (it holds the VIP)' : ''
    }${vipBad ? `; VIP: ${vip.summary}` : ''}`,
  }));
}

function redisUnavailable(v: View): Finding | undefined {
  if (!v.failing('redis-ping')) return undefined;
  const backends = v.nodesWith((n) => n.services.includes('redis-server')).map((n) => n.name);
  return {
    nodes: backends,
    evidence: v.present(['redis-ping', ...backends.map((n) => `service:redis-server@${n}`)]),
    summary: `Redis does not answer PING: ${v.get('redis-ping')?.summary ?? ''}`,
  };
}

function missStorm(v: View): Finding | undefined {
  const ratio = v.facts('redis-hit-ratio', 'hit-ratio');
  const budget = v.facts('redis-budget', 'redis-budget');
  if (ratio?.ratio == null || budget === undefined) return undefined;
  if (ratio.ratio >= v.ctx.redisHitRatioThreshold || budget.runaway.length === 0) return undefined;
  const backends = v.nodesWith((n) => n.services.includes('redis-server')).map((n) => n.name);
  const agents = budget.runaway.map((a) => `${a.agent} (${a.count}/${budget.limit})`).join(', ');
  return {
    nodes: backends,
    evidence: v.present(['redis-hit-ratio', 'redis-budget']),
    summary: `Redis hit ratio ${(ratio.ratio * 100).toFixed(0)} % (${ratio.source}) below ${(
      v.ctx.redisHitRatioThreshold * 100
    ).toFixed(0)} %; runaway agents: ${agents}`,
  };
}

function chaos(v: View): Finding[] {
  return v.ctx.nodes.flatMap((n) => {
    const flag = v.facts(`chaos-flag@${n.name}`, 'chaos-flag');
    const fw = v.facts(`firewall@${n.name}`, 'firewall');
    const flagged = flag?.present === true;
    const rules = fw?.unexpected ?? [];
    if (!flagged && rules.length === 0) return [];
    const stopped = n.services.filter((s) => {
      const f = v.facts(`service:${s}@${n.name}`, 'service');
      return f !== undefined && f.state !== 'active';
    });
    const parts = [
      flagged ? '/etc/okome/CHAOS_ENABLE is present' : undefined,
      rules.length > 0 ? `${rules.length} unexpected iptables rule(s)` : undefined,
      stopped.length > 0 ? `stopped: ${stopped.join(', ')}` : undefined,
    ].filter((p): p is string => p !== undefined);
    return [
      {
        nodes: [n.name],
        evidence: v.present([
          `chaos-flag@${n.name}`,
          `firewall@${n.name}`,
          ...stopped.map((s) => `service:${s}@${n.name}`),
        ]),
        summary: `${n.name}: ${parts.join('; ')}`,
      },
    ];
  });
}

function streaming(v: View): Finding | undefined {
  if (v.failing('orch-health')) return undefined;
  const bad = v.ctx.nodes.filter(
    (n) => (v.facts(`streaming@${n.name}`, 'streaming')?.missing.length ?? 0) > 0,
  );
  if (bad.length === 0) return undefined;
  const detail = bad
    .map((n) => {
      const missing = v.facts(`streaming@${n.name}`, 'streaming')?.missing ?? [];
      return `${n.name}: ${missing.map((m) => `${m.location} lacks ${m.directives.join(', ')}`).join('; ')}`;
    })
    .join(' | ');
  return {
    nodes: bad.map((n) => n.name),
    evidence: v.present(['orch-health', ...bad.map((n) => `streaming@${n.name}`)]),
    summary: `orchestrator healthy, but streaming directives are missing: ${detail}`,
  };
}

/**
 * Golden rule 1 before any rule: when no probe of the orchestrator, the VIP or any Pi got an
 * answer and no check judged anything, the bot cannot tell a dead cache layer from its own
 * broken network or configuration, so it names no incident and declares no Pi dead. A scope
 * that did not probe every Pi and the VIP (one node's checks) cannot say nothing answered.
 */
const ISOLATION_SUMMARY = "cannot reach the cache layer from here: check the bot's network and config";

function isolation(v: View): Isolation | undefined {
  const piProbes = v.ctx.nodes.flatMap((n) => [`ssh@${n.name}`, `node-http@${n.name}`]);
  const orchestratorChecked = v.get('orch-health') !== undefined;
  const probes = [...(orchestratorChecked ? ['orch-health'] : []), 'vip-http', ...piProbes];
  if (v.ctx.nodes.length === 0 || !probes.every((id) => v.noAnswer(id))) return undefined;
  // Anything judged (Redis answering PING, say) proves a way in: the Pis' own rules decide.
  if (v.results.some((r) => !couldNotJudge(r.status))) return undefined;
  return {
    summary: ISOLATION_SUMMARY,
    detail: `no answer from ${orchestratorChecked ? 'the orchestrator, ' : ''}the VIP ${
      v.ctx.vipAddress
    } or any Pi (SSH and HTTP)`,
    evidence: probes,
    advice: [
      "Check the bot host's own network: its link, address and route to the cache layer's subnet.",
      'Check the addresses and ports in the configuration (`okome config check`).',
      ...(orchestratorChecked
        ? []
        : [
            'The orchestrator was not checked, so both Pis being down cannot be ruled out: `okome status` checks it and tells the two apart.',
          ]),
    ],
  };
}

type Rule = (v: View) => Finding | Finding[] | undefined;

/** Order matters: the orchestrator first (golden rule 1), then the VIP (golden rule 3). */
const RULES: ReadonlyArray<readonly [IncidentNumber, Rule]> = [
  ['5', orchestratorDown],
  ['3', vipNotResponding],
  ['3', keepalivedStopped],
  ['4', frontendDead],
  ['7', chaos],
  ['1', uiSlowOrBlank],
  ['2', redisUnavailable],
  ['6', missStorm],
  ['5b', streaming],
];

/** With every Pi dead these only restate it, and their actions would target Pis that cannot answer. */
const SYMPTOMS_OF_DEAD_PIS: ReadonlySet<IncidentNumber> = new Set(['1', '2', '3']);

const GOLDEN_RULE_1 =
  'Golden rule 1: the orchestrator is down, so the cache nodes are symptoms. Fix the orchestrator; do not touch cache nodes.';

export function classify(results: readonly CheckResult[], ctx: ClassifyContext): Classification {
  const view = new View(results, ctx);
  const isolated = isolation(view);
  if (isolated !== undefined) return { vip: vipState(view), isolation: isolated, incidents: [] };
  const everyPiIsDead = everyPiDead(view);
  const incidents: Incident[] = [];
  for (const [number, rule] of RULES) {
    if (everyPiIsDead && SYMPTOMS_OF_DEAD_PIS.has(number)) continue;
    const found = rule(view);
    const findings = found === undefined ? [] : Array.isArray(found) ? found : [found];
    for (const f of findings) incidents.push(toIncident(number, f, ctx));
  }
  const upstreamDown = incidents.some((i) => i.number === '5');
  const chaosNodes = new Set(incidents.filter((i) => i.number === '7').flatMap((i) => i.nodes));
  return {
    vip: vipState(view),
    isolation: undefined,
    incidents: incidents.map((incident) => {
      if (upstreamDown && incident.number !== '5' && incident.actions.length > 0) {
        return { ...incident, actions: [], held: { actions: incident.actions, reason: GOLDEN_RULE_1 } };
      }
      // Services a chaos test stopped come back with disable-chaos, which restarts them all.
      if (
        (incident.number === '1' || incident.number === '2') &&
        incident.nodes.length > 0 &&
        incident.nodes.every((n) => chaosNodes.has(n))
      ) {
        return {
          ...incident,
          actions: [],
          held: {
            actions: incident.actions,
            reason: 'Part of incident 7 (chaos): disable-chaos restarts the services.',
          },
        };
      }
      return incident;
    }),
  };
}

function toIncident(number: IncidentNumber, f: Finding, ctx: ClassifyContext): Incident {
  const card = runbook[number];
  const nodes = [...f.nodes].sort();
  const targets = f.actionNodes ?? nodes;
  const actions = card.actions.flatMap((id): ProposedAction[] => {
    const action = ctx.actions.find((a) => a.id === id);
    if (action === undefined) return [];
    const allowed = targets.filter((name) => {
      const node = ctx.nodes.find((n) => n.name === name);
      return (
        node !== undefined &&
        (action.targets.nodes?.includes(name) === true ||
          node.roles.some((r) => action.targets.roles?.includes(r) === true))
      );
    });
    return allowed.length > 0 ? [{ actionId: id, nodes: allowed }] : [];
  });
  return {
    number,
    key: incidentKeys.diagnosis(number, nodes),
    title: f.title ?? card.title,
    nodes,
    evidence: f.evidence,
    summary: f.summary,
    actions,
    held: undefined,
    advice: f.advice ?? [],
    followUps: f.followUps ?? card.followUps,
  };
}
