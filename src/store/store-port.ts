import type { Approval } from '../domain/approval.js';
import type { Drill, LastDrill } from '../domain/drill.js';
import type { SilenceMatcher } from '../domain/silence.js';

/**
 * The store's ports, one per user: incident use cases, the timeline, event deduplication and
 * the outbox. SQLite implements them all (sqlite-store.ts); another store only has to
 * implement the same interfaces. Times are epoch milliseconds from the caller's clock.
 */

/**
 * Runs `fn` in one transaction: every write inside commits together or not at all, and no other
 * caller's store work interleaves with it. `fn` should do store work only (no network calls).
 */
export interface Transactional {
  atomically<T>(fn: () => Promise<T>): Promise<T>;
}

export type IncidentStatus = 'open' | 'resolved';

export interface Incident {
  readonly id: number;
  /** Incident number + affected nodes, e.g. `1:pi-a`: at most one open incident per key. */
  readonly key: string;
  /** The runbook's incident number: '1'..'7' or '5b'. */
  readonly number: string;
  readonly title: string;
  readonly status: IncidentStatus;
  readonly channel: string;
  /** The outbox ref of the incident's channel message (its thread holds the story). */
  readonly rootRef: string | null;
  /** A Slack user ID, or 'bot' when an alert opened it. */
  readonly requester: string;
  readonly openedAt: number;
  readonly resolvedAt: number | null;
  readonly resolvedReason: string | null;
  readonly acknowledgedBy: string | null;
  readonly acknowledgedAt: number | null;
  /** How often a symptom back soon after a resolve reopened it. */
  readonly reopenedCount: number;
  /** The latest diagnosis report, parsed from JSON (read it with readStoredReport). */
  readonly lastReport: unknown;
}

/** How openOrReuseIncident found the incident for a key. */
export type OpenHow = 'created' | 'reused' | 'reopened';

export interface OpenIncidentInput {
  readonly key: string;
  readonly number: string;
  readonly title: string;
  readonly channel: string;
  readonly requester: string;
  readonly now: number;
}

export interface IncidentStore extends Transactional {
  /**
   * The open incident with this key; else the latest one with it reopened when `reopen` says so
   * (a flapping symptom); else a new one. Atomic across processes.
   */
  openOrReuseIncident(
    input: OpenIncidentInput,
    reopen?: (latest: Incident) => boolean,
  ): Promise<{ incident: Incident; how: OpenHow }>;
  /** Compare-and-set open → resolved; false when it was not open (already resolved or unknown). */
  resolveIncident(id: number, now: number, reason: string): Promise<boolean>;
  /** Compare-and-set: records the first acknowledgement of an open incident; false otherwise. */
  acknowledgeIncident(id: number, user: string, now: number): Promise<boolean>;
  openIncidents(): Promise<Incident[]>;
  /** The open incident with this key, else the most recently opened one. */
  incidentByKey(key: string): Promise<Incident | undefined>;
  incidentById(id: number): Promise<Incident | undefined>;
  /** The open incident with this runbook number, else the most recently opened one (a report of a past one). */
  latestIncidentWithNumber(number: string): Promise<Incident | undefined>;
  /** Stores the latest report (any JSON-serialisable value). */
  saveReport(id: number, report: unknown): Promise<void>;
  setIncidentRootRef(id: number, rootRef: string): Promise<void>;
}

export type TimelineKind =
  | 'diagnosis'
  | 'notice'
  | 'alert'
  | 'approval'
  | 'command'
  | 'outcome'
  | 'resolved'
  | 'note';

export interface TimelineEntry {
  readonly id: number;
  readonly incidentId: number;
  readonly at: number;
  readonly kind: TimelineKind;
  readonly text: string;
  /** Structured details, parsed from JSON; null when none were given. */
  readonly data: unknown;
}

export interface TimelineStore {
  appendTimeline(entry: {
    incidentId: number;
    at: number;
    kind: TimelineKind;
    text: string;
    data?: unknown;
  }): Promise<TimelineEntry>;
  /** Oldest first. */
  timeline(incidentId: number): Promise<TimelineEntry[]>;
}

export interface SeenEventStore {
  /** True the first time `key` is seen: redelivered envelopes, HTTP retries, duplicate alerts. */
  markSeen(key: string, now: number): Promise<boolean>;
  /** Forgets keys seen before `cutoff`; returns how many. Run it periodically. */
  pruneSeen(cutoff: number): Promise<number>;
}

/** upload: a file shared into a channel or thread (its payload is an UploadPayload). */
export type OutboxOp = 'post' | 'update' | 'ephemeral' | 'upload';
export type OutboxState = 'pending' | 'sent' | 'failed';

export interface OutboxRow {
  readonly id: number;
  /** Global enqueue order; delivery keeps it within a queue. */
  readonly seq: number;
  readonly channel: string;
  /** `channel:threadRootRef` (or the message's own ref): order is kept per queue. */
  readonly queueKey: string;
  readonly op: OutboxOp;
  /** post: the ref the new message gets; update: the ref to update; ephemeral: null. */
  readonly messageRef: string | null;
  /** post in a thread: the thread root's ref. */
  readonly threadRef: string | null;
  /** ephemeral: the user who sees it. */
  readonly user: string | null;
  /** JSON; its shape belongs to the outbox. */
  readonly payload: string;
  readonly state: OutboxState;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  readonly createdAt: number;
  readonly sentAt: number | null;
  /** Replicas: the replica delivering it (claimOutbox), until `leaseUntil`; null when unclaimed. */
  readonly claimedBy: string | null;
  readonly leaseUntil: number;
}

/** Replicas: one channel's post pacing (its token bucket and 429 pause), shared by every replica. */
export interface ChannelPacing {
  readonly channel: string;
  readonly tokens: number;
  /** When `tokens` was counted. */
  readonly at: number;
  readonly pausedUntil: number;
}

export interface NewOutboxRow {
  readonly channel: string;
  readonly queueKey: string;
  readonly op: OutboxOp;
  readonly messageRef: string | null;
  readonly threadRef: string | null;
  readonly user: string | null;
  readonly payload: string;
  readonly now: number;
}

export interface MessageRecord {
  readonly ref: string;
  readonly channel: string;
  /** Slack's ts; null until the post is delivered. */
  readonly ts: string | null;
  /** The thread root's ref for a thread reply; null for a channel message. */
  readonly threadRef: string | null;
  /** The state of the outbox post that creates it; null when there is none. */
  readonly postState: OutboxState | null;
}

export interface OutboxCounts {
  readonly pending: number;
  readonly sent: number;
  readonly failed: number;
  readonly oldestPendingCreatedAt: number | null;
}

export interface OutboxStore extends Transactional {
  /** A new message ref (no ts yet). */
  createMessage(input: { channel: string; threadRef: string | null; now: number }): Promise<string>;
  message(ref: string): Promise<MessageRecord | undefined>;
  insertOutbox(row: NewOutboxRow): Promise<number>;
  /** Pending rows (post or update) for one message, in seq order. */
  pendingRowsForMessage(messageRef: string): Promise<OutboxRow[]>;
  replacePayload(id: number, payload: string): Promise<void>;
  /** The first pending row of every queue, in seq order. */
  pendingHeads(): Promise<OutboxRow[]>;
  /** Counts an attempt before the call, so a crash mid-call still shows in `attempts`. */
  recordAttempt(id: number): Promise<void>;
  /**
   * Replicas: counts an attempt and claims a pending row for `replica` until `leaseUntil`; false
   * when another replica's lease on it is still running (or it is no longer pending). Every
   * outcome below (posted, sent, deferred, failed) ends the claim; a replica that dies leaves it
   * to lapse, and another replica claims the row then.
   */
  claimOutbox(id: number, replica: string, now: number, leaseUntil: number): Promise<boolean>;
  /** Replicas: the stored pacing of these channels (none for a channel never paced). */
  channelPacing(channels: readonly string[]): Promise<ChannelPacing[]>;
  saveChannelPacing(pacing: readonly ChannelPacing[]): Promise<void>;
  /** Writes the new message's ts and marks the post sent, in one transaction. */
  markPosted(id: number, ts: string, now: number): Promise<void>;
  markSent(id: number, now: number): Promise<void>;
  /** Leaves the row pending, not before `nextAttemptAt`. */
  deferOutbox(id: number, nextAttemptAt: number, error: string): Promise<void>;
  markFailed(id: number, error: string, now: number): Promise<void>;
  /** Drops sent rows older than `cutoff` (messages keep their ts); returns how many. */
  pruneSentOutbox(cutoff: number): Promise<number>;
  pendingCount(): Promise<number>;
  outboxCounts(): Promise<OutboxCounts>;
}

/** One audit row as stored (the approval fields are null for entries about no approval). */
export interface StoredAuditEntry {
  readonly id: number;
  readonly at: number;
  readonly approvalId: string | null;
  readonly incidentId: number | null;
  readonly actionId: string | null;
  readonly actor: string;
  readonly event: string;
  readonly verdict: string;
  readonly code: string;
  readonly reason: string;
  readonly stateBefore: string | null;
  readonly stateAfter: string | null;
  readonly targets: readonly string[];
  readonly commands: readonly string[];
}

export interface AuditStore {
  appendAudit(entry: Omit<StoredAuditEntry, 'id'>): Promise<void>;
  /** Oldest first. */
  auditSince(at: number): Promise<StoredAuditEntry[]>;
}

/** Approvals, with the message that carries their buttons. */
export interface ApprovalRecordStore extends Transactional {
  insertApproval(approval: Approval): Promise<void>;
  approvalById(id: string): Promise<Approval | undefined>;
  compareAndSetApproval(next: Approval, expectedVersion: number): Promise<boolean>;
  approvalsInStates(states: readonly Approval['state'][]): Promise<Approval[]>;
  setApprovalCardRef(id: string, ref: string): Promise<void>;
  approvalCardRef(id: string): Promise<string | undefined>;
  /** The latest finished run of an action on an incident's nodes (cooldowns). */
  lastFinishedAt(actionId: string, targets: readonly string[]): Promise<number | undefined>;
}

export interface IncidentAlert {
  readonly fingerprint: string;
  readonly alertname: string;
  readonly node: string | null;
  readonly status: 'firing' | 'resolved';
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly count: number;
}

export interface AlertStore {
  /** Records one new delivery of an alert on an incident; says whether its status changed. */
  recordAlert(input: {
    incidentId: number;
    fingerprint: string;
    alertname: string;
    node: string | null;
    status: 'firing' | 'resolved';
    at: number;
  }): Promise<{ alert: IncidentAlert; created: boolean; statusChanged: boolean }>;
  /** Bumps count and last-seen of a known alert (a repeat); false when unknown. */
  touchAlert(incidentId: number, fingerprint: string, at: number): Promise<boolean>;
  incidentAlerts(incidentId: number): Promise<IncidentAlert[]>;
  /** The open incident that has seen this alert fingerprint, if any. */
  incidentOfAlert(fingerprint: string): Promise<number | undefined>;
  summaryRef(incidentId: number): Promise<string | undefined>;
  setSummaryRef(incidentId: number, ref: string): Promise<void>;
  /**
   * Notes that an incident's alerts changed and its summary (and a diagnosis, when asked) is
   * due; requests for one incident merge (a diagnosis asked once stays asked).
   */
  requestAlertFollowUp(incidentId: number, diagnose: boolean, now: number): Promise<void>;
  /** Follow-ups not done yet, oldest first. */
  pendingAlertFollowUps(): Promise<AlertFollowUp[]>;
  /**
   * Done with this version of the request; false when a newer request came meanwhile (kept).
   * `diagnosed`: a diagnosis started after this version was read has finished, so the newer
   * request diagnoses again only if it asked for a diagnosis itself.
   */
  completeAlertFollowUp(incidentId: number, version: number, diagnosed: boolean): Promise<boolean>;
  /**
   * Replicas: takes the incident's follow-up for `replica` until `leaseUntil`, unless another
   * replica's claim is still live or it is done (undefined). Returns the request as it is now:
   * a list read before may be stale (another replica did it meanwhile).
   */
  claimAlertFollowUp(
    incidentId: number,
    replica: string,
    now: number,
    leaseUntil: number,
  ): Promise<AlertFollowUp | undefined>;
  /** Replicas: hands back a claim whose follow-up is not done (failed, or asked again meanwhile). */
  releaseAlertFollowUp(incidentId: number, replica: string): Promise<void>;
}

/** A webhook event accepted (answered 2xx) and not yet handled. */
export interface InboxRow {
  readonly id: number;
  readonly kind: string;
  /** Parsed from JSON. */
  readonly payload: unknown;
  readonly receivedAt: number;
  /** Failed attempts to handle it so far. */
  readonly attempts: number;
}

/** Replicas: the dead-man's switch as every replica feeds it and the next leader takes it over. */
export interface DeadmanRecord {
  /** The latest Watchdog any replica received; null before the first. */
  readonly lastSeen: number | null;
  /** Since when the monitoring path is down (its notice posted); null while it is not. */
  readonly lostSince: number | null;
}

export interface DeadmanStore {
  /** A Watchdog received at `at` (kept only when later than the one on record). */
  recordWatchdog(at: number): Promise<void>;
  deadmanRecord(): Promise<DeadmanRecord>;
  /** The path went down at `since` (its notice is being posted), or is back (null). */
  setDeadmanLost(since: number | null): Promise<void>;
}

/** The VIP holder as last known to the bot (any replica, any leader term). */
export interface VipHolderRecord {
  readonly holder: string;
  /** When that holder was seen or announced (epoch ms). */
  readonly at: number;
  /** The keepalived `node/instance` whose MASTER hook told it; null when the watcher saw it. */
  readonly reporter: string | null;
}

export interface VipHolderStore {
  /** The holder last announced or learned; undefined before the first is known. */
  vipHolder(): Promise<VipHolderRecord | undefined>;
  /** Read it inside the transaction that announces the move, so that one replica says it. */
  setVipHolder(holder: string, at: number, reporter: string | null): Promise<void>;
  /** What the leader's watcher last confirmed (holder null: none or several); undefined before. */
  watchedVipHolder(): Promise<{ readonly holder: string | null; readonly at: number } | undefined>;
  setWatchedVipHolder(holder: string | null, at: number): Promise<void>;
}

/** Accepted webhook events, kept until handled: written in the transaction of their seen mark. */
export interface InboxStore {
  addToInbox(kind: string, payload: unknown, now: number): Promise<number>;
  /** Oldest first. */
  inbox(kind: string): Promise<InboxRow[]>;
  removeFromInbox(id: number): Promise<void>;
  /** Counts a failed attempt; returns the attempts so far. */
  inboxAttemptFailed(id: number, error: string): Promise<number>;
}

export interface AlertFollowUp {
  readonly incidentId: number;
  readonly diagnose: boolean;
  readonly version: number;
  readonly requestedAt: number;
}

/** An Alertmanager silence made from an incident's thread. */
export interface AlertSilence {
  readonly id: number;
  readonly incidentId: number;
  /** Alertmanager's id. */
  readonly silenceId: string;
  readonly matchers: readonly SilenceMatcher[];
  /** The Slack user who made it, and the name Alertmanager shows as its creator. */
  readonly createdBy: string;
  readonly createdByName: string;
  readonly startsAt: number;
  readonly endsAt: number;
  /** The thread message that shows it (with its Expire button). */
  readonly messageRef: string | null;
  readonly expiredAt: number | null;
  readonly expiredBy: string | null;
}

export interface SilenceStore extends Transactional {
  insertSilence(
    silence: Omit<AlertSilence, 'id' | 'expiredAt' | 'expiredBy' | 'messageRef'>,
  ): Promise<AlertSilence>;
  setSilenceMessageRef(ids: readonly number[], ref: string): Promise<void>;
  /** Not expired by a click and not yet over at `now`; oldest first. */
  activeSilences(incidentId: number, now: number): Promise<AlertSilence[]>;
  /** Compare-and-set: records who ended it; false when it was already expired. */
  markSilenceExpired(id: number, by: string, at: number): Promise<boolean>;
}

/** One incident as runbook coverage sees it (coverage-queries.ts says how each time is chosen). */
export interface IncidentCoverageRow {
  readonly id: number;
  readonly key: string;
  /** As stored: a failover's is '4' whatever its cause (the coverage domain decides what counts). */
  readonly number: string;
  readonly openedAt: number;
  /** The newest diagnosis, alert or notice of it; its opening when none. */
  readonly lastSeenAt: number;
  /** The newest end of an approval of it that succeeded (steps ran, verification passed). */
  readonly lastFixedAt: number | null;
  /** The newest passing verification of a fix, or resolve by a judgement (healthy status, VIP back). */
  readonly lastVerifiedAt: number | null;
  /** `failover:` keys: the cause kind its newest diagnosis named (FailoverCause kind); else null. */
  readonly failoverCause: string | null;
}

export interface CoverageStore {
  /** One row per incident ever opened, oldest first. */
  incidentCoverage(): Promise<IncidentCoverageRow[]>;
}

/** Drills (`/okome drill`): one record each, changed by compare-and-set on its version. */
export interface DrillStore {
  /** Stores a new drill (awaiting its approvals) and returns it with its id. */
  insertDrill(drill: Omit<Drill, 'id'>): Promise<Drill>;
  drillById(id: number): Promise<Drill | undefined>;
  /** The drill whose approval card carries this approval id. */
  drillByApproval(approvalId: string): Promise<Drill | undefined>;
  /**
   * Writes `next` when the stored version is still `expectedVersion`. False when another write
   * came first, or when `next` runs while another drill runs (one at a time, across replicas).
   */
  compareAndSetDrill(next: Drill, expectedVersion: number): Promise<boolean>;
  /** Drills running or restoring (at most one), and those awaiting approval. Oldest first. */
  unfinishedDrills(): Promise<Drill[]>;
  /** Newest first. */
  drills(limit: number): Promise<Drill[]>;
  /**
   * Per runbook incident a drill rehearses, the last drill that ran to its end (completed,
   * failed, not-restored or interrupted; not the rejected, expired or refused ones).
   */
  lastDrills(): Promise<LastDrill[]>;
}

/** Everything okome-bot persists. */
export interface Store
  extends IncidentStore,
    TimelineStore,
    SeenEventStore,
    OutboxStore,
    AuditStore,
    ApprovalRecordStore,
    AlertStore,
    SilenceStore,
    InboxStore,
    DeadmanStore,
    VipHolderStore,
    CoverageStore,
    DrillStore {
  /**
   * Runs `fn` as the singletons' leader of term `token`: every store call inside it commits only
   * while that term holds (PostgreSQL re-checks the lease in the same transaction; SQLite has one
   * serving process, its serve lock, and just runs `fn`). Throws OKOME_NOT_LEADER once it ended.
   */
  fenced<T>(token: number, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
