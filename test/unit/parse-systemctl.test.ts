import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServiceState, parseSystemctlStatus } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

describe('parseServiceState (systemctl is-active)', () => {
  it.each([
    ['active\n', 0, 'active'],
    ['reloading\n', 0, 'reloading'],
    ['inactive\n', 3, 'inactive'],
    ['failed\n', 3, 'failed'],
    ['activating\n', 3, 'activating'],
    ['deactivating\n', 3, 'deactivating'],
  ] as const)('%j with exit %i is %s', (stdout, exit, kind) => {
    expect(parseServiceState(stdout, exit)).toEqual({ kind });
  });

  it('exit 4 means no such unit', () => {
    expect(parseServiceState('', 4)).toEqual({ kind: 'not-found' });
  });

  it('a state word that contradicts the exit code is not trusted', () => {
    const r = parseServiceState('active\n', 3);
    expect(r.kind).toBe('unknown');
    expect(r).toMatchObject({ reason: 'state "active" contradicts exit code 3' });
    expect(parseServiceState('inactive\n', 0).kind).toBe('unknown');
  });

  it('a host without systemd: nothing on stdout, exit 1 (as on this machine)', () => {
    expect(parseServiceState('', 1)).toEqual({
      kind: 'unknown',
      reason: 'systemctl is-active printed nothing (exit 1)',
    });
  });

  it('systemctl\'s own "unknown", a killed command, and other words', () => {
    expect(parseServiceState('unknown\n', 3).kind).toBe('unknown');
    expect(parseServiceState('active\n', null)).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/exit status/),
    });
    expect(parseServiceState('Active: active (running)\n', 0)).toMatchObject({
      kind: 'unknown',
      reason: 'not a systemd unit state: "Active: active (running)"',
    });
    expect(parseServiceState('active\nactive\n', 0)).toMatchObject({ kind: 'unknown' });
  });
});

describe('parseSystemctlStatus (systemctl status UNIT --no-pager)', () => {
  it('an active timer, with its next trigger', () => {
    expect(parseSystemctlStatus(fixture('systemctl-status-timer-active.txt'), 0)).toEqual({
      kind: 'status',
      unit: 'okome-prewarm.timer',
      description: 'OKOME cache prewarm',
      loaded: {
        state: 'loaded',
        path: '/etc/systemd/system/okome-prewarm.timer',
        enablement: 'enabled',
        preset: 'enabled',
      },
      activeState: 'active',
      subState: 'waiting',
      result: null,
      since: 'Sun 2026-11-29 03:12:07 UTC',
      trigger: { at: 'Sun 2026-11-29 03:20:00 UTC', relative: '2min 3s left' },
      triggers: ['okome-prewarm.service'],
    });
  });

  it('an inactive timer: Trigger n/a, and the journal excerpt below is not read', () => {
    const r = parseSystemctlStatus(fixture('systemctl-status-timer-inactive.txt'), 3);
    expect(r).toMatchObject({
      kind: 'status',
      activeState: 'inactive',
      subState: 'dead',
      since: 'Sun 2026-11-29 03:25:41 UTC',
      trigger: null,
      triggers: ['okome-prewarm.service'],
    });
  });

  it('a failed service: the result instead of a sub-state', () => {
    expect(parseSystemctlStatus(fixture('systemctl-status-nginx-failed.txt'), 3)).toMatchObject({
      kind: 'status',
      unit: 'nginx.service',
      activeState: 'failed',
      subState: null,
      result: 'exit-code',
      since: 'Sun 2026-11-29 03:14:22 UTC',
      trigger: null,
      triggers: [],
    });
  });

  it('a running service with CGroup tree lines', () => {
    expect(parseSystemctlStatus(fixture('systemctl-status-nginx-active.txt'), 0)).toMatchObject({
      activeState: 'active',
      subState: 'running',
      loaded: { path: '/lib/systemd/system/nginx.service' },
    });
  });

  it('ASCII glyphs and the older "vendor preset"', () => {
    expect(parseSystemctlStatus(fixture('systemctl-status-timer-ascii.txt'), 0)).toMatchObject({
      unit: 'okome-prewarm.timer',
      activeState: 'active',
      loaded: { preset: 'enabled' },
      triggers: ['okome-prewarm.service'],
    });
  });

  it('auto-restart carries both a sub-state and a result', () => {
    const text = [
      '● okome-prewarm.service - OKOME cache prewarm run',
      '     Loaded: loaded (/etc/systemd/system/okome-prewarm.service; static)',
      '     Active: activating (auto-restart) (Result: exit-code) since Sun 2026-11-29 03:20:01 UTC; 3s ago',
      '',
    ].join('\n');
    expect(parseSystemctlStatus(text, 3)).toMatchObject({
      activeState: 'activating',
      subState: 'auto-restart',
      result: 'exit-code',
      loaded: { state: 'loaded', enablement: 'static', preset: null },
    });
  });

  it('a masked unit is reported, not hidden', () => {
    const text = [
      '○ okome-prewarm.timer',
      '     Loaded: masked (Reason: Unit okome-prewarm.timer is masked.)',
      '     Active: inactive (dead)',
      '',
    ].join('\n');
    expect(parseSystemctlStatus(text, 3)).toMatchObject({
      kind: 'status',
      description: null,
      loaded: { state: 'masked', path: null, enablement: null },
      activeState: 'inactive',
      since: null,
    });
  });

  it('unit not found: the message (exit 4), an empty stdout with exit 4, or Loaded: not-found', () => {
    expect(parseSystemctlStatus('Unit okome-prewarm.timer could not be found.\n', 4)).toEqual({
      kind: 'not-found',
      unit: 'okome-prewarm.timer',
    });
    expect(parseSystemctlStatus('', 4)).toEqual({ kind: 'not-found', unit: null });
    expect(parseSystemctlStatus(fixture('systemctl-status-not-loaded.txt'), 3)).toEqual({
      kind: 'not-found',
      unit: 'okome-prewarm.timer',
    });
  });

  it('the message quoted in the journal excerpt of an existing unit does not make it missing', () => {
    const text = `${fixture('systemctl-status-nginx-active.txt')}Nov 29 03:12:06 pi-a sudo[900]: Unit okome-x.timer could not be found.\n`;
    expect(parseSystemctlStatus(text, 0)).toMatchObject({ kind: 'status', unit: 'nginx.service' });
  });

  it('garbage and cut-short output are unknown with a reason', () => {
    expect(parseSystemctlStatus('', 1)).toEqual({
      kind: 'unknown',
      reason: 'systemctl status printed nothing (exit 1)',
    });
    expect(parseSystemctlStatus('Failed to connect to bus: Host is down\n', 1)).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/^first line is not a unit header/),
    });
    const cut = fixture('systemctl-status-timer-active.txt').split('\n').slice(0, 2).join('\n');
    expect(parseSystemctlStatus(cut, 0)).toEqual({
      kind: 'unknown',
      reason: 'no "Active:" line in the status of okome-prewarm.timer',
    });
    expect(parseSystemctlStatus('● x.timer\n     Active: sleeping (zzz)\n', 0)).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/^unrecognised Active line/),
    });
  });
});
