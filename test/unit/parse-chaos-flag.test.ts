import { describe, expect, it } from 'vitest';
import { parseChaosFlag } from '../../src/domain/parse/index.js';

describe('parseChaosFlag (test -e /etc/okome/CHAOS_ENABLE && echo present || echo absent)', () => {
  it('reads the two words the command prints', () => {
    expect(parseChaosFlag('present\n')).toEqual({ kind: 'present' });
    expect(parseChaosFlag('absent\n')).toEqual({ kind: 'absent' });
    expect(parseChaosFlag('  absent\r\n')).toEqual({ kind: 'absent' });
  });

  it('anything else is no evidence either way', () => {
    expect(parseChaosFlag('')).toEqual({ kind: 'unknown', reason: 'the chaos-flag test printed nothing' });
    expect(parseChaosFlag('Welcome to pi-a!\npresent\n')).toMatchObject({ kind: 'unknown' });
    expect(parseChaosFlag('present\nabsent\n')).toMatchObject({ kind: 'unknown' });
    expect(parseChaosFlag('pres')).toEqual({
      kind: 'unknown',
      reason: 'expected "present" or "absent", got "pres"',
    });
    expect(parseChaosFlag('PRESENT')).toMatchObject({ kind: 'unknown' });
  });
});
