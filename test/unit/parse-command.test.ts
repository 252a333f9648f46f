import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/domain/command.js';

const targets = ['disk', 'vip-owner', 'pi-a', 'pi-b', '1', '5b'];

describe('parseCommand', () => {
  it.each([
    ['status', { kind: 'status' }],
    ['  STATUS  ', { kind: 'status' }],
    ['', { kind: 'help' }],
    ['help', { kind: 'help' }],
    ['validate', { kind: 'validate' }],
    ['check pi-a', { kind: 'check', target: 'pi-a' }],
    ['check 5b', { kind: 'check', target: '5b' }],
    ['incident 5b', { kind: 'incident', number: '5b' }],
    ['incident 7', { kind: 'incident', number: '7' }],
    ['drill failover', { kind: 'drill', drill: 'failover' }],
    ['DRILL Redis', { kind: 'drill', drill: 'redis' }],
    ['coverage', { kind: 'coverage' }],
    ['Coverage ', { kind: 'coverage' }],
  ])('%j', (text, expected) => {
    expect(parseCommand(text, targets)).toEqual(expected);
  });

  it.each([
    'status now',
    'coverage 4',
    'check',
    'check pi-z',
    'check $(reboot)',
    'incident 8',
    'reboot pi-a',
    'drill',
    'drill nginx',
    'drill failover now',
    'x'.repeat(600),
  ])('refuses %j with a reason', (text) => {
    const c = parseCommand(text, targets);
    expect(c.kind).toBe('invalid');
    if (c.kind === 'invalid') expect(c.problem.length).toBeGreaterThan(5);
  });

  it('never throws and never lets an unknown target through (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 700 }), (text) => {
        const c = parseCommand(text, targets);
        if (c.kind === 'check') expect(targets).toContain(c.target);
      }),
      { numRuns: 2000 },
    );
  });
});
