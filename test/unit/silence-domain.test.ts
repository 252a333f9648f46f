import { describe, expect, it } from 'vitest';
import {
  describeMatchers,
  distinctMatcherSets,
  parseSilenceAction,
  parseUnsilenceAction,
  silenceActionId,
  silenceMatchers,
  unsilenceActionId,
} from '../../src/domain/silence.js';
import { ACTION_ID_PATTERN } from '../../src/slack/bolt-app.js';

describe('silence buttons and matchers (pure)', () => {
  it('button ids round-trip, match the Bolt pattern, and refuse a value that does not repeat the id', () => {
    const id = silenceActionId(42, '4h');
    expect(id).toBe('okome:silence:4h:42');
    expect(ACTION_ID_PATTERN.test(id)).toBe(true);
    expect(parseSilenceAction(id, '42')).toEqual({
      incidentId: 42,
      duration: '4h',
      durationMs: 4 * 3_600_000,
    });
    expect(parseSilenceAction(id, '43')).toBeUndefined();
    expect(parseSilenceAction('okome:silence:2h:42', '42')).toBeUndefined();
    expect(parseSilenceAction('okome:silence:1h:42:x', '42')).toBeUndefined();
    expect(parseSilenceAction('okome:silence:1h:0', '0')).toBeUndefined();
    expect(parseSilenceAction('okome:silence:1h:-1', '-1')).toBeUndefined();
    expect(parseUnsilenceAction(unsilenceActionId(7), '7')).toEqual({ incidentId: 7 });
    expect(parseUnsilenceAction('okome:unsilence:7', '8')).toBeUndefined();
    expect(parseUnsilenceAction(silenceActionId(7, '1h'), '7')).toBeUndefined();
    expect(parseSilenceAction(unsilenceActionId(7), '7')).toBeUndefined();
  });

  it('matchers: every non-empty label, exact equality, sorted by name', () => {
    expect(silenceMatchers({ node: 'pi-b', alertname: 'RedisDown', severity: 'page', empty: '' })).toEqual([
      { name: 'alertname', value: 'RedisDown', isRegex: false, isEqual: true },
      { name: 'node', value: 'pi-b', isRegex: false, isEqual: true },
      { name: 'severity', value: 'page', isRegex: false, isEqual: true },
    ]);
    // A value that looks like a regex stays a literal.
    expect(silenceMatchers({ job: '.*' })).toEqual([
      { name: 'job', value: '.*', isRegex: false, isEqual: true },
    ]);
    expect(describeMatchers(silenceMatchers({ alertname: 'A"b', node: 'x' }))).toBe(
      'alertname="A\\"b", node="x"',
    );
  });

  it('one matcher set per distinct label set, none for an empty one', () => {
    const sets = distinctMatcherSets([
      { alertname: 'RedisDown', node: 'pi-b' },
      { node: 'pi-b', alertname: 'RedisDown' },
      { alertname: 'RedisExporterDown', node: 'pi-b' },
      {},
    ]);
    expect(sets.map((m) => describeMatchers(m))).toEqual([
      'alertname="RedisDown", node="pi-b"',
      'alertname="RedisExporterDown", node="pi-b"',
    ]);
  });
});
