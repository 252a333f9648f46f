import { describe, expect, it } from 'vitest';
import { mayApprove } from '../../src/domain/approval-policy.js';
import { APPROVAL_ID, approvalIdSchema, newApprovalId } from '../../src/remediation/approval-id.js';
import {
  authorizeApprover,
  CachedUsergroupDirectory,
  resolveApprovers,
  type UsergroupDirectory,
} from '../../src/remediation/usergroup-directory.js';

describe('mayApprove', () => {
  const groupMembers = new Map([['S0OPS', new Set(['U0GROUPIE'])]]);

  it('allows a listed user and a group member, and says how', () => {
    expect(mayApprove('U0LISTED', { users: ['U0LISTED'], groupMembers })).toEqual({
      allowed: true,
      via: 'user',
    });
    expect(mayApprove('U0GROUPIE', { users: [], groupMembers })).toEqual({ allowed: true, via: 'S0OPS' });
  });

  it('refuses anyone else', () => {
    const d = mayApprove('U0STRANGER', { users: ['U0LISTED'], groupMembers });
    expect(d).toEqual({
      allowed: false,
      reason: expect.stringMatching(/not one of the configured approvers/),
    });
  });

  it('matches IDs exactly (no prefix, case or whitespace games)', () => {
    for (const id of ['U0LISTE', 'u0listed', ' U0LISTED', 'U0LISTED ', 'U0LISTED\n', '<@U0LISTED>']) {
      expect(mayApprove(id, { users: ['U0LISTED'], groupMembers: new Map() }).allowed).toBe(false);
    }
  });

  it('says when a stale group list was used', () => {
    const d = mayApprove('U0GROUPIE', { users: [], groupMembers, staleGroups: ['S0OPS'] });
    expect(d).toMatchObject({ allowed: true, via: 'S0OPS', note: expect.stringMatching(/last known list/) });
  });

  it('refuses with "try again" when a group could not be read', () => {
    const d = mayApprove('U0GROUPIE', { users: [], groupMembers: new Map(), unresolvedGroups: ['S0OPS'] });
    expect(d).toEqual({
      allowed: false,
      reason: expect.stringMatching(/S0OPS could not be read.*try again/),
    });
  });

  it('says when nobody is configured', () => {
    expect(mayApprove('U1', { users: [], groupMembers: new Map() })).toEqual({
      allowed: false,
      reason: expect.stringMatching(/no approvers are configured/),
    });
  });
});

class FakeDirectory implements UsergroupDirectory {
  calls = 0;
  failing = false;
  groups = new Map<string, string[]>([['S0OPS', ['U0A', 'U0B']]]);
  async members(groupId: string): Promise<readonly string[]> {
    this.calls += 1;
    await Promise.resolve();
    if (this.failing) throw new Error('ratelimited');
    const m = this.groups.get(groupId);
    if (m === undefined) throw new Error('no_such_subteam');
    return m;
  }
}

function setup(options: { ttlMs?: number; maxStaleMs?: number } = {}) {
  let now = 1_000_000;
  const inner = new FakeDirectory();
  const cached = new CachedUsergroupDirectory(inner, { now: () => now, ...options });
  return { inner, cached, advance: (ms: number) => (now += ms) };
}

describe('CachedUsergroupDirectory', () => {
  it('caches for the TTL, then asks again', async () => {
    const { inner, cached, advance } = setup({ ttlMs: 60_000 });
    expect(await cached.lookup('S0OPS')).toEqual({ kind: 'fresh', members: new Set(['U0A', 'U0B']) });
    advance(59_999);
    await cached.lookup('S0OPS');
    expect(inner.calls).toBe(1);
    advance(1);
    inner.groups.set('S0OPS', ['U0C']);
    expect(await cached.lookup('S0OPS')).toEqual({ kind: 'fresh', members: new Set(['U0C']) });
    expect(inner.calls).toBe(2);
  });

  it('a burst of 50 lookups makes one call', async () => {
    const { inner, cached } = setup();
    const all = await Promise.all(Array.from({ length: 50 }, () => cached.lookup('S0OPS')));
    expect(inner.calls).toBe(1);
    expect(all.every((l) => l.kind === 'fresh')).toBe(true);
  });

  it('on error uses the last known list and says so; then retries after a pause', async () => {
    const { inner, cached, advance } = setup({ ttlMs: 1000 });
    await cached.lookup('S0OPS');
    advance(1000);
    inner.failing = true;
    expect(await cached.lookup('S0OPS')).toMatchObject({ kind: 'stale', error: 'ratelimited' });
    expect(inner.calls).toBe(2);
    advance(1000);
    await cached.lookup('S0OPS'); // within the 5 s pause: no call
    expect(inner.calls).toBe(2);
    advance(5000);
    inner.failing = false;
    expect((await cached.lookup('S0OPS')).kind).toBe('fresh');
    expect(inner.calls).toBe(3);
  });

  it('refuses (unknown) when it never had a list, or the last one is too old', async () => {
    const { inner, cached, advance } = setup({ ttlMs: 1000, maxStaleMs: 10_000 });
    inner.failing = true;
    expect(await cached.lookup('S0OPS')).toEqual({ kind: 'unknown', error: 'ratelimited' });
    inner.failing = false;
    advance(6000);
    await cached.lookup('S0OPS');
    inner.failing = true;
    advance(10_001);
    expect(await cached.lookup('S0OPS')).toEqual({ kind: 'unknown', error: 'ratelimited' });
  });

  it('authorizeApprover: listed users need no Slack call; group members and strangers do', async () => {
    const { inner, cached } = setup();
    const config = { users: ['U0LISTED'], groups: ['S0OPS'] };
    expect(await authorizeApprover('U0LISTED', config, cached)).toEqual({ allowed: true, via: 'user' });
    expect(inner.calls).toBe(0);
    expect(await authorizeApprover('U0A', config, cached)).toEqual({ allowed: true, via: 'S0OPS' });
    expect((await authorizeApprover('U0Z', config, cached)).allowed).toBe(false);
    expect(inner.calls).toBe(1);
  });

  it('resolveApprovers: separates unresolved and stale groups', async () => {
    const { inner, cached, advance } = setup({ ttlMs: 10 });
    await cached.lookup('S0OPS');
    advance(10);
    inner.failing = true;
    const set = await resolveApprovers({ users: [], groups: ['S0OPS', 'S0OTHER'] }, cached);
    expect(set.staleGroups).toEqual(['S0OPS']);
    expect(set.unresolvedGroups).toEqual(['S0OTHER']);
    expect(mayApprove('U0A', set)).toMatchObject({ allowed: true, note: expect.any(String) });
    expect(mayApprove('U0Z', set)).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/S0OTHER/),
    });
  });
});

describe('approval ids', () => {
  it('are ap_ + 20 base32 characters, and unique', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newApprovalId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(APPROVAL_ID);
  });

  it('are derived from the random bytes given', () => {
    expect(newApprovalId((n) => new Uint8Array(n))).toBe(`ap_${'a'.repeat(20)}`);
    expect(newApprovalId((n) => new Uint8Array(n).fill(255))).toBe(`ap_${'7'.repeat(20)}`);
  });

  it('a button value that is anything else does not parse', () => {
    for (const v of [
      'ap_aaaaaaaaaaaaaaaaaaa',
      'ap_aaaaaaaaaaaaaaaaaaaaa',
      'ap_AAAAAAAAAAAAAAAAAAAA',
      'ap_aaaaaaaaaaaaaaaaaaa;',
      '$(reboot)',
      '',
    ]) {
      expect(approvalIdSchema.safeParse(v).success).toBe(false);
    }
    expect(approvalIdSchema.safeParse(newApprovalId()).success).toBe(true);
  });
});
