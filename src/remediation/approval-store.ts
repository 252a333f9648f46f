import {
  type Approval,
  type ApprovalEvent,
  type ApprovalState,
  type DecideOptions,
  type Decision,
  decide,
} from '../domain/approval.js';
import { ErrorCode, OkomeError } from '../errors.js';

/**
 * Where approvals live. `compareAndSetApproval` is the one write that matters: it succeeds only
 * if nobody changed the record since it was read (in this process or another).
 */
export interface ApprovalStore {
  insertApproval(approval: Approval): Promise<void>;
  approvalById(id: string): Promise<Approval | undefined>;
  /** Writes `next` only if the stored version is still `expectedVersion`; false otherwise. */
  compareAndSetApproval(next: Approval, expectedVersion: number): Promise<boolean>;
  approvalsInStates(states: readonly ApprovalState[]): Promise<Approval[]>;
}

/** One line of the append-only audit trail: every click, decision and execution. */
export interface AuditEntry {
  readonly at: number;
  readonly approvalId: string;
  readonly incidentId: number;
  readonly actionId: string;
  /** A Slack user ID, or 'bot' for timers, executions and recovery. */
  readonly actor: string;
  readonly event: ApprovalEvent['kind'];
  readonly verdict: Decision['verdict'];
  readonly code: Decision['code'];
  readonly reason: string;
  readonly stateBefore: ApprovalState;
  readonly stateAfter: ApprovalState;
  readonly targets: readonly string[];
  readonly commands: readonly string[];
}

export interface AuditLog {
  appendAudit(entry: AuditEntry): Promise<void>;
}

export function auditEntry(
  before: Approval,
  event: ApprovalEvent,
  decision: Decision,
  at: number,
): AuditEntry {
  return {
    at,
    approvalId: before.id,
    incidentId: before.incidentId,
    actionId: before.actionId,
    actor: event.kind === 'click-approve' || event.kind === 'click-reject' ? event.user : 'bot',
    event: event.kind,
    verdict: decision.verdict,
    code: decision.code,
    reason: decision.reason,
    stateBefore: before.state,
    stateAfter: decision.next.state,
    targets: before.targets,
    commands: before.commands.map((c) => `${c.node}: ${c.command}`),
  };
}

export interface ApplyOptions extends DecideOptions {
  /** Each attempt re-reads the record; a lost compare-and-set is retried this many times. */
  readonly maxAttempts?: number;
  readonly audit?: AuditLog;
}

/**
 * Read → decide → compare-and-set, retried on conflict. The returned decision is the one that
 * was stored (or the refusal): its effects are to be carried out exactly once, by the caller.
 * A `start-run` effect can therefore come out of only one call, however many clicks race.
 */
export async function applyApprovalEvent(
  store: ApprovalStore,
  id: string,
  event: ApprovalEvent,
  now: number,
  options: ApplyOptions = {},
): Promise<Decision> {
  const attempts = options.maxAttempts ?? 100;
  for (let i = 0; i < attempts; i += 1) {
    const current = await store.approvalById(id);
    if (current === undefined) {
      throw new OkomeError(ErrorCode.ApprovalNotFound, `no approval ${id}`, { userSafe: true });
    }
    const decision = decide(current, event, now, options);
    if (!decision.changed || (await store.compareAndSetApproval(decision.next, current.version))) {
      await options.audit?.appendAudit(auditEntry(current, event, decision, now));
      return decision;
    }
  }
  throw new OkomeError(
    ErrorCode.ApprovalConflict,
    `approval ${id}: still changing after ${attempts} attempts; try again`,
    { userSafe: true },
  );
}

/** A store in memory: for tests and for a bot run without a database. */
export class MemoryApprovalStore implements ApprovalStore, AuditLog {
  private readonly rows = new Map<string, Approval>();
  readonly audit: AuditEntry[] = [];

  async insertApproval(approval: Approval): Promise<void> {
    if (this.rows.has(approval.id)) {
      throw new OkomeError(ErrorCode.Internal, `approval ${approval.id} already exists`);
    }
    this.rows.set(approval.id, approval);
  }
  async approvalById(id: string): Promise<Approval | undefined> {
    return this.rows.get(id);
  }
  async compareAndSetApproval(next: Approval, expectedVersion: number): Promise<boolean> {
    const current = this.rows.get(next.id);
    if (current === undefined || current.version !== expectedVersion) return false;
    this.rows.set(next.id, next);
    return true;
  }
  async approvalsInStates(states: readonly ApprovalState[]): Promise<Approval[]> {
    return [...this.rows.values()].filter((a) => states.includes(a.state));
  }
  async appendAudit(entry: AuditEntry): Promise<void> {
    this.audit.push(entry);
  }
}
