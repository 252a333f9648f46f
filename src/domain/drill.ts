import type { Approval } from './approval.js';
import type { IncidentNumber } from './runbook.js';

/**
 * Drills: the runbook's promises measured on purpose (`/okome drill failover|redis`). Pure: the
 * record, its transitions and the figures; time is always an argument. The use case
 * (src/remediation/drill-service.ts) runs the commands and stores every transition before the
 * next command, so a crash always leaves a record that says what is owed.
 *
 *   awaiting-approval ──approved──▶ running ──stop sent──▶ running (restore owed)
 *        │                             │                        │
 *        ├─rejected/expired─▶ finished │ refused (incident open)└──figures──▶ restoring ──▶ finished
 *        └─refused───────────▶ finished◀┘                                         │
 *   crash while running/restoring: at start-up, restore if owed, then finished (interrupted)
 */

export const drillKinds = ['failover', 'redis'] as const;
export type DrillKind = (typeof drillKinds)[number];

/**
 * The runbook incident each drill rehearses: the failover drill is incident 4's "cold-spare Pi
 * claims VIP in ~2 seconds" (the holder's keepalived gone); the redis drill is incident 2.
 */
export const drillIncident: Readonly<Record<DrillKind, IncidentNumber>> = { failover: '4', redis: '2' };

/** The catalogue actions each drill runs, by id (config/okome.example.yml). */
export const drillActions: Readonly<Record<DrillKind, { readonly stop: string; readonly restore: string }>> =
  {
    failover: { stop: 'drill-stop-keepalived', restore: 'drill-start-keepalived' },
    redis: { stop: 'drill-stop-redis', restore: 'restart-redis' },
  };

/** Two people approve a failover drill whatever its actions say: it moves the VIP on purpose. */
export const FAILOVER_DRILL_MIN_APPROVALS = 2;

/** The runbook's claim the failover drill measures (incident 4: "claims VIP in ~2 seconds"). */
export const RUNBOOK_FAILOVER_MS = 2000;
/** "About 2 s": up to half as much again still reads as what the runbook promises. */
export const RUNBOOK_TOLERANCE = 1.5;

export type DrillPhase = 'awaiting-approval' | 'running' | 'restoring' | 'finished';

export type DrillOutcome =
  /** Ran, measured, restored. */
  | 'completed'
  /** Ran and restored, but a figure could not be measured (the VIP never moved, Redis was never seen down). */
  | 'failed'
  /** The restore did not verify: someone must act (said loudly). */
  | 'not-restored'
  /** A crash stopped it; restored (or nothing had run) at start-up. */
  | 'interrupted'
  | 'rejected'
  | 'expired'
  /** Refused when it was to start (an incident open, another drill running). */
  | 'refused';

export interface FailoverFigures {
  readonly kind: 'failover';
  readonly from: string;
  /** Who answered on the VIP after the stop; null when nobody did within the window. */
  readonly to: string | null;
  /** From the stop command to the first answer from the other node. */
  readonly newHolderMs: number | null;
  /** VIP requests sent (every 100 ms) and how many failed, while the VIP moved away. */
  readonly probes: number;
  readonly failedProbes: number;
  /** From the start command to the VIP answering from the original holder again. */
  readonly backMs: number | null;
  readonly failedProbesBack: number;
  readonly runbookMs: number;
}

export interface RedisFigures {
  readonly kind: 'redis';
  readonly node: string;
  /** From the stop command to the first status run that named incident 2. */
  readonly detectionMs: number | null;
  readonly statusRuns: number;
  /** From the restart command to its verification passing. */
  readonly recoveryMs: number | null;
  readonly verified: boolean;
}

export type DrillFigures = FailoverFigures | RedisFigures;

export interface Drill {
  readonly id: number;
  readonly kind: DrillKind;
  readonly incidentNumber: IncidentNumber;
  /** A Slack user ID. */
  readonly requester: string;
  readonly channel: string;
  /** The drill's message; its thread gets the progress and the figures. */
  readonly rootRef: string | null;
  /** The approval card (in the drill's thread): clicks count only from there. */
  readonly cardRef: string | null;
  /** The approval gate, decided by the approval state machine (domain/approval.ts). */
  readonly approval: Approval;
  readonly phase: DrillPhase;
  /** The node a service is stopped on (the VIP holder, the Redis node), once chosen. */
  readonly node: string | null;
  /** Recorded before the stop command is sent: from then on a restore is owed. */
  readonly stopSentAt: number | null;
  /** The restore verified (keepalived back and the VIP on its holder; Redis answering). */
  readonly restoredAt: number | null;
  readonly requestedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly outcome: DrillOutcome | null;
  readonly summary: string | null;
  readonly figures: DrillFigures | null;
  /** Compare-and-set key, bumped on every change. */
  readonly version: number;
}

export interface NewDrillInput {
  readonly kind: DrillKind;
  readonly requester: string;
  readonly channel: string;
  readonly approval: Approval;
  readonly now: number;
}

/** A new drill, waiting for its approvals; the store gives it its id. */
export function newDrill(input: NewDrillInput): Omit<Drill, 'id'> {
  return {
    kind: input.kind,
    incidentNumber: drillIncident[input.kind],
    requester: input.requester,
    channel: input.channel,
    rootRef: null,
    cardRef: null,
    approval: input.approval,
    phase: 'awaiting-approval',
    node: null,
    stopSentAt: null,
    restoredAt: null,
    requestedAt: input.now,
    startedAt: null,
    finishedAt: null,
    outcome: null,
    summary: null,
    figures: null,
    version: 0,
  };
}

/** Running or restoring: a drill whose commands may be in flight (one at a time). */
export function isActive(drill: Pick<Drill, 'phase'>): boolean {
  return drill.phase === 'running' || drill.phase === 'restoring';
}

/** A stop was sent and no restore verified: a crash now leaves a service down. */
export function restoreOwed(drill: Drill): boolean {
  return drill.stopSentAt !== null && drill.restoredAt === null && drill.phase !== 'finished';
}

export type Transition =
  | { readonly ok: true; readonly next: Drill }
  | { readonly ok: false; readonly reason: string };

function change(drill: Drill, patch: Partial<Drill>): Drill {
  return { ...drill, ...patch, version: drill.version + 1 };
}

const refuse = (reason: string): Transition => ({ ok: false, reason });

export interface OpenIncidentRef {
  readonly key: string;
  readonly number: string;
  readonly title: string;
}

/**
 * Why a drill may not start now, or undefined: never over a real incident (its failover or its
 * outage would be mistaken for the drill's), never two at once.
 */
export function drillRefusal(input: {
  readonly openIncidents: readonly OpenIncidentRef[];
  readonly activeDrills: readonly Pick<Drill, 'id' | 'kind'>[];
}): string | undefined {
  if (input.openIncidents.length > 0) {
    const named = input.openIncidents.map((i) => `${i.title} (${i.key})`).join('; ');
    return `an incident is open: ${named}. Resolve it first; a drill never runs over a real incident`;
  }
  const running = input.activeDrills[0];
  if (running !== undefined) return `drill ${running.id} (${running.kind}) is running`;
  return undefined;
}

/** The approvals are in: the drill runs, against `node`. */
export function startDrill(drill: Drill, approval: Approval, node: string, now: number): Transition {
  if (drill.phase !== 'awaiting-approval') return refuse(`drill ${drill.id} is ${drill.phase}`);
  if (approval.state !== 'approved' && approval.state !== 'running')
    return refuse(`drill ${drill.id} is not approved (${approval.state})`);
  return { ok: true, next: change(drill, { approval, phase: 'running', node, startedAt: now }) };
}

/** The approval changed without starting the drill (one approval of two, a rejection, expiry). */
export function withApproval(drill: Drill, approval: Approval, now: number): Drill {
  const ended =
    approval.state === 'rejected' ? 'rejected' : approval.state === 'expired' ? 'expired' : undefined;
  if (ended === undefined || drill.phase !== 'awaiting-approval') return change(drill, { approval });
  return change(drill, {
    approval,
    phase: 'finished',
    finishedAt: now,
    outcome: ended,
    summary: approval.outcome ?? ended,
  });
}

/** Where the drill's messages are, once queued. */
export function withMessages(drill: Drill, rootRef: string, cardRef: string): Drill {
  return change(drill, { rootRef, cardRef });
}

/** Written before the stop command goes out. */
export function stopSent(drill: Drill, now: number): Transition {
  if (drill.phase !== 'running' || drill.node === null) return refuse(`drill ${drill.id} is not running`);
  if (drill.stopSentAt !== null) return refuse(`drill ${drill.id} already sent its stop`);
  return { ok: true, next: change(drill, { stopSentAt: now }) };
}

/** Measured: the figures kept, the restore next. */
export function restoring(drill: Drill, figures: DrillFigures): Transition {
  if (drill.phase !== 'running') return refuse(`drill ${drill.id} is not running`);
  return { ok: true, next: change(drill, { phase: 'restoring', figures }) };
}

/** Figures measured so far (the way back is measured after the restore started). */
export function measured(drill: Drill, figures: DrillFigures): Transition {
  if (!isActive(drill)) return refuse(`drill ${drill.id} is ${drill.phase}`);
  return { ok: true, next: change(drill, { figures }) };
}

/** The restore verified. */
export function restored(drill: Drill, now: number): Transition {
  if (!isActive(drill)) return refuse(`drill ${drill.id} is ${drill.phase}`);
  return { ok: true, next: change(drill, { restoredAt: now }) };
}

/**
 * The end. A drill that owes a restore can only end as not-restored (or interrupted with the
 * restore done): nothing may read "completed" while a service is still stopped.
 */
export function finishDrill(
  drill: Drill,
  outcome: DrillOutcome,
  summary: string,
  now: number,
  figures: DrillFigures | null = drill.figures,
): Transition {
  if (drill.phase === 'finished') return refuse(`drill ${drill.id} already finished (${drill.outcome})`);
  const owed = restoreOwed(drill);
  if (owed && outcome !== 'not-restored') {
    return refuse(`drill ${drill.id} stopped a service on ${drill.node} that is not restored`);
  }
  return {
    ok: true,
    next: change(drill, { phase: 'finished', outcome, summary, finishedAt: now, figures }),
  };
}

/** What a start-up owes an unfinished drill a crash left behind. */
export type StartupAction =
  /** Still waiting for approvals: its card stays valid. */
  | { readonly kind: 'none' }
  /** Nothing was stopped: just end it. */
  | { readonly kind: 'end'; readonly summary: string }
  /** A service was stopped: run the drill's restore action on the node, then end it. */
  | { readonly kind: 'restore'; readonly actionId: string; readonly node: string };

export function startupAction(drill: Drill): StartupAction {
  if (drill.phase === 'awaiting-approval' || drill.phase === 'finished') return { kind: 'none' };
  if (!restoreOwed(drill) || drill.node === null)
    return { kind: 'end', summary: 'the bot restarted before the drill stopped anything' };
  return { kind: 'restore', actionId: drillActions[drill.kind].restore, node: drill.node };
}

// ── figures ──────────────────────────────────────────────────────────────────────────────

/** One request to the VIP: when it went, when it ended, whether it answered and who served it. */
export interface VipSample {
  readonly sentAt: number;
  readonly doneAt: number;
  readonly ok: boolean;
  /** The X-OKOME-Node header of the answer. */
  readonly servedBy: string | undefined;
}

export interface MoveMeasure {
  /** The first answer from a node other than `from`, counted from `since`; null: none yet. */
  readonly moveMs: number | null;
  readonly to: string | null;
  readonly probes: number;
  readonly failed: number;
}

/**
 * The VIP's move, from the samples since `since` (the stop or start command): time to the first
 * answer from another node than `from` and the requests that failed meanwhile. `from` is what
 * the VIP's answers named before (X-OKOME-Node); `to`, when given, is the node expected.
 */
export function measureMove(
  samples: readonly VipSample[],
  input: { readonly since: number; readonly from: string | undefined; readonly to?: string | undefined },
): MoveMeasure {
  const after = samples.filter((s) => s.sentAt >= input.since).sort((a, b) => a.sentAt - b.sentAt);
  const moved = after.find(
    (s) =>
      s.ok &&
      s.servedBy !== undefined &&
      s.servedBy !== input.from &&
      (input.to === undefined || s.servedBy === input.to),
  );
  const until = moved?.doneAt ?? Number.POSITIVE_INFINITY;
  const window = after.filter((s) => s.sentAt <= until);
  return {
    moveMs: moved === undefined ? null : moved.doneAt - input.since,
    to: moved?.servedBy ?? null,
    probes: window.length,
    failed: window.filter((s) => !s.ok).length,
  };
}

export type MoveVerdict = 'waiting' | 'moved' | 'timed-out';

/**
 * Whether to stop probing: moved once `steadyProbes` answers in a row came from the new node
 * (a flapping VIP is not a move), timed out once `timeoutMs` passed since `since`.
 */
export function moveVerdict(
  samples: readonly VipSample[],
  input: { readonly since: number; readonly from: string | undefined; readonly to?: string | undefined },
  now: number,
  options: { readonly timeoutMs: number; readonly steadyProbes: number },
): MoveVerdict {
  const done = samples.filter((s) => s.sentAt >= input.since).sort((a, b) => a.sentAt - b.sentAt);
  const tail = done.slice(-options.steadyProbes);
  const steady =
    tail.length === options.steadyProbes &&
    tail.every(
      (s) =>
        s.ok &&
        s.servedBy !== undefined &&
        s.servedBy !== input.from &&
        (input.to === undefined || s.servedBy === input.to),
    );
  if (steady) return 'moved';
  return now - input.since >= options.timeoutMs ? 'timed-out' : 'waiting';
}

/** The failover against the runbook's "about 2 s". */
export function runbookVerdict(newHolderMs: number | null): 'within' | 'slower' | 'never' {
  if (newHolderMs === null) return 'never';
  return newHolderMs <= RUNBOOK_FAILOVER_MS * RUNBOOK_TOLERANCE ? 'within' : 'slower';
}

/** Seconds with one decimal: "1.4 s". */
export function seconds(ms: number | null): string {
  return ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`;
}

/** The figures in one paragraph, for the thread, the CLI and the store's summary. */
export function describeFigures(figures: DrillFigures): string {
  if (figures.kind === 'failover') {
    const verdict = runbookVerdict(figures.newHolderMs);
    const against =
      verdict === 'never'
        ? `no other node answered on the VIP (the runbook says the spare claims it in about ${seconds(figures.runbookMs)})`
        : verdict === 'within'
          ? `as the runbook says (about ${seconds(figures.runbookMs)})`
          : `slower than the runbook's about ${seconds(figures.runbookMs)}`;
    return [
      `VIP from ${figures.from} to ${figures.to ?? 'nobody'} in ${seconds(figures.newHolderMs)}: ${against}.`,
      `${figures.failedProbes} of ${figures.probes} requests to the VIP failed meanwhile (one every 100 ms).`,
      `Back on ${figures.from} ${seconds(figures.backMs)} after keepalived started again; ${figures.failedProbesBack} request(s) failed on the way back.`,
    ].join(' ');
  }
  return [
    `redis-server stopped on ${figures.node}: the bot saw incident 2 after ${seconds(figures.detectionMs)} (${figures.statusRuns} status run(s)).`,
    figures.verified
      ? `Recovered through restart-redis, verified ${seconds(figures.recoveryMs)} after the restart was sent.`
      : 'The restart did not verify.',
  ].join(' ');
}

/** Per runbook incident, the last finished drill that rehearsed it (for coverage). */
export interface LastDrill {
  readonly incidentNumber: IncidentNumber;
  readonly id: number;
  readonly kind: DrillKind;
  readonly outcome: DrillOutcome;
  readonly finishedAt: number;
}
