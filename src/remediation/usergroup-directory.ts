import type { Authorization } from '../domain/approval.js';
import { type ApproverSet, mayApprove } from '../domain/approval-policy.js';

/** Lists a Slack user group's members (the Slack layer implements it with usergroups.users.list). */
export interface UsergroupDirectory {
  members(groupId: string): Promise<readonly string[]>;
}

export type GroupLookup =
  | { readonly kind: 'fresh'; readonly members: ReadonlySet<string> }
  /** The lookup failed; this is the last list we had, fetched at `fetchedAt`. */
  | {
      readonly kind: 'stale';
      readonly members: ReadonlySet<string>;
      readonly fetchedAt: number;
      readonly error: string;
    }
  | { readonly kind: 'unknown'; readonly error: string };

export interface CachedDirectoryOptions {
  readonly now: () => number;
  /** How long a fetched list is used without asking again. Default 60 s. */
  readonly ttlMs?: number;
  /** After a failed lookup, how long to answer from the last list before asking again. Default 5 s. */
  readonly retryAfterErrorMs?: number;
  /** A last known list older than this is not trusted any more: refuse instead. Default 1 h. */
  readonly maxStaleMs?: number;
}

interface Entry {
  members: ReadonlySet<string> | undefined;
  fetchedAt: number;
  /** When the last failure happened, and why; undefined after a success. */
  failure: { at: number; error: string } | undefined;
  inflight: Promise<void> | undefined;
}

/**
 * Group membership, cached briefly: a burst of clicks makes one Slack call per group (in-flight
 * lookups are shared); when Slack fails, the last known list is used and said to be stale.
 */
export class CachedUsergroupDirectory {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly retryAfterErrorMs: number;
  private readonly maxStaleMs: number;

  constructor(
    private readonly inner: UsergroupDirectory,
    private readonly options: CachedDirectoryOptions,
  ) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.retryAfterErrorMs = options.retryAfterErrorMs ?? 5_000;
    this.maxStaleMs = options.maxStaleMs ?? 3_600_000;
  }

  async lookup(groupId: string): Promise<GroupLookup> {
    const entry = this.entry(groupId);
    const now = this.options.now();
    const fresh =
      entry.members !== undefined && entry.failure === undefined && now - entry.fetchedAt < this.ttlMs;
    const backingOff = entry.failure !== undefined && now - entry.failure.at < this.retryAfterErrorMs;
    if (!fresh && !backingOff) {
      entry.inflight ??= this.refresh(groupId, entry).finally(() => {
        entry.inflight = undefined;
      });
      await entry.inflight;
    }
    return this.answer(entry);
  }

  /** Forgets every cached list (e.g. on a `subteam_members_changed` event). */
  invalidate(groupId?: string): void {
    if (groupId === undefined) this.entries.clear();
    else this.entries.delete(groupId);
  }

  private entry(groupId: string): Entry {
    let entry = this.entries.get(groupId);
    if (entry === undefined) {
      entry = { members: undefined, fetchedAt: 0, failure: undefined, inflight: undefined };
      this.entries.set(groupId, entry);
    }
    return entry;
  }

  private async refresh(groupId: string, entry: Entry): Promise<void> {
    try {
      const members = await this.inner.members(groupId);
      entry.members = new Set(members);
      entry.fetchedAt = this.options.now();
      entry.failure = undefined;
    } catch (error) {
      entry.failure = {
        at: this.options.now(),
        error: error instanceof Error ? error.message : String(error),
      };
    }
  }

  private answer(entry: Entry): GroupLookup {
    const now = this.options.now();
    if (entry.failure === undefined && entry.members !== undefined) {
      return { kind: 'fresh', members: entry.members };
    }
    const error = entry.failure?.error ?? 'not looked up';
    if (entry.members !== undefined && now - entry.fetchedAt <= this.maxStaleMs) {
      return { kind: 'stale', members: entry.members, fetchedAt: entry.fetchedAt, error };
    }
    return { kind: 'unknown', error };
  }
}

export interface ApproversConfig {
  readonly users: readonly string[];
  readonly groups: readonly string[];
}

/** The approver set for one decision: configured users plus the groups' current members. */
export async function resolveApprovers(
  config: ApproversConfig,
  directory: CachedUsergroupDirectory,
): Promise<ApproverSet> {
  const groupMembers = new Map<string, ReadonlySet<string>>();
  const unresolvedGroups: string[] = [];
  const staleGroups: string[] = [];
  const lookups = await Promise.all(config.groups.map(async (g) => [g, await directory.lookup(g)] as const));
  for (const [group, lookup] of lookups) {
    if (lookup.kind === 'unknown') {
      unresolvedGroups.push(group);
      continue;
    }
    groupMembers.set(group, lookup.members);
    if (lookup.kind === 'stale') staleGroups.push(group);
  }
  return { users: config.users, groupMembers, unresolvedGroups, staleGroups };
}

/**
 * Whether `userId` may approve. A user listed by ID is allowed without asking Slack, so the
 * common case costs no API call and still works when Slack's group API is down.
 */
export async function authorizeApprover(
  userId: string,
  config: ApproversConfig,
  directory: CachedUsergroupDirectory,
): Promise<Authorization> {
  if (config.users.includes(userId)) return { allowed: true, via: 'user' };
  return mayApprove(userId, await resolveApprovers(config, directory));
}
