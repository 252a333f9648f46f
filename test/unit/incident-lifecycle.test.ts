import { describe, expect, it } from 'vitest';
import {
  DEFAULT_INCIDENT_POLICY,
  type IncidentLife,
  incidentKeys,
  keyKind,
  mayResolve,
  onAcknowledge,
  onResolve,
  onSeenAgain,
  type ResolveCause,
  resolveReason,
} from '../../src/domain/incident.js';

const open: IncidentLife = { status: 'open', resolvedAt: null, acknowledgedBy: null, acknowledgedAt: null };
const resolvedAt = (at: number): IncidentLife => ({ ...open, status: 'resolved', resolvedAt: at });
const policy = { reopenWithinMs: 60_000 };

describe('incident keys', () => {
  it('are built in one place and tell their kind', () => {
    expect(incidentKeys.diagnosis('1', ['pi-a'])).toBe('1:pi-a');
    expect(incidentKeys.diagnosis('5', [])).toBe('5');
    expect(incidentKeys.vip(['pi-b', 'pi-a'])).toBe('3:pi-a,pi-b');
    expect(incidentKeys.failover('pi-a')).toBe('failover:pi-a');
    expect(incidentKeys.alert('DiskFull')).toBe('alert:DiskFull');
    expect(keyKind('2:pi-b')).toBe('diagnosis');
    expect(keyKind('failover:pi-a')).toBe('failover');
    expect(keyKind('alert:X')).toBe('alert');
  });
});

describe('which cause may resolve which incident', () => {
  const table: ReadonlyArray<[string, ResolveCause, boolean]> = [
    ['2:pi-b', 'healthy-status', true],
    ['2:pi-b', 'alerts-resolved', false],
    ['2:pi-b', 'by-hand', true],
    ['alert:X', 'alerts-resolved', true],
    ['alert:X', 'healthy-status', false],
    ['failover:pi-a', 'vip-back', true],
    ['failover:pi-a', 'healthy-status', false],
    ['3:pi-a,pi-b', 'vip-back', true],
    ['3:pi-a,pi-b', 'healthy-status', true],
    ['1:pi-a', 'vip-back', false],
  ];
  it.each(table)('%s by %s → %s', (key, cause, allowed) => {
    expect(mayResolve(key, cause)).toBe(allowed);
    expect(onResolve(open, key, cause).verdict).toBe(allowed ? 'resolve' : 'refused');
  });

  it('an incident resolves once, whatever the cause', () => {
    expect(onResolve(resolvedAt(1), '2:pi-b', 'by-hand')).toEqual({
      verdict: 'refused',
      reason: 'That incident was already resolved.',
    });
  });
});

describe('a symptom seen again (flapping)', () => {
  it('continues an open incident', () => {
    expect(onSeenAgain(open, 10, policy)).toBe('continue');
  });
  it('reopens one resolved within the window, up to its edge', () => {
    expect(onSeenAgain(resolvedAt(1000), 1000 + 59_999, policy)).toBe('reopen');
    expect(onSeenAgain(resolvedAt(1000), 1000 + 60_000, policy)).toBe('reopen');
  });
  it('opens a new one after the window, or when there was none', () => {
    expect(onSeenAgain(resolvedAt(1000), 1000 + 60_001, policy)).toBe('open-new');
    expect(onSeenAgain(undefined, 0, policy)).toBe('open-new');
  });
  it('has a default window of 15 minutes', () => {
    expect(DEFAULT_INCIDENT_POLICY.reopenWithinMs).toBe(15 * 60_000);
  });
});

describe('acknowledge', () => {
  it('records the first acknowledgement of an open incident only', () => {
    expect(onAcknowledge(open, 'U1')).toEqual({ verdict: 'acknowledged' });
    const acked = { ...open, acknowledgedBy: 'U1', acknowledgedAt: 5 };
    expect(onAcknowledge(acked, 'U1')).toEqual({
      verdict: 'refused',
      reason: 'You already acknowledged this incident.',
    });
    expect(onAcknowledge(acked, 'U2', (u) => `<@${u}>`)).toEqual({
      verdict: 'refused',
      reason: 'Already acknowledged by <@U1>.',
    });
    expect(onAcknowledge(resolvedAt(1), 'U1').verdict).toBe('refused');
  });
});

describe('resolve reasons', () => {
  it('say what closed it', () => {
    expect(resolveReason('healthy-status')).toMatch(/healthy again/);
    expect(resolveReason('alerts-resolved')).toMatch(/Every alert resolved/);
    expect(resolveReason('vip-back', 'pi-a')).toBe('VIP back on pi-a.');
    expect(resolveReason('by-hand', 'U9', (u) => `<@${u}>`)).toBe('Resolved by hand by <@U9>.');
  });
});
