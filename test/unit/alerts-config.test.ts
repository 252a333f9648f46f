import { describe, expect, it } from 'vitest';
import {
  type AlertMappingEntry,
  alertsConfigSchema,
  DEFAULT_ALERT_MAPPING,
  incidentForAlert,
} from '../../src/alerts/alert-config.js';

describe('alertsConfigSchema', () => {
  it('defaults everything when the section is absent', () => {
    const config = alertsConfigSchema.parse(undefined);
    expect(config.maxBodyBytes).toBe(1_048_576);
    expect(config.replayWindowSec).toBe(300);
    expect(config.vipWatch).toEqual({
      enabled: true,
      intervalMs: 2000,
      stream: true,
      idleIntervalMs: 30_000,
    });
    expect(config.mapping).toEqual(DEFAULT_ALERT_MAPPING);
  });

  it('a configured mapping replaces the default one', () => {
    const config = alertsConfigSchema.parse({
      mapping: [
        { match: { alertname: 'Custom', severity: '/page|critical/' }, incident: '5b', nodeLabel: 'host' },
      ],
    });
    expect(config.mapping).toEqual([
      { match: { alertname: 'Custom', severity: '/page|critical/' }, incident: '5b', nodeLabel: 'host' },
    ]);
  });

  it('names the key of an invalid regex, an unknown incident and a misspelt key', () => {
    const result = alertsConfigSchema.safeParse({
      mapping: [{ match: { alertname: '/Redis(Down/' }, incident: '8' }],
      maxBodyByte: 10,
    });
    expect(result.success).toBe(false);
    const issues = result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues.some((i) => i.startsWith('mapping.0.match.alertname: invalid regular expression'))).toBe(
      true,
    );
    expect(issues.some((i) => i.startsWith('mapping.0.incident'))).toBe(true);
    expect(issues.some((i) => i.includes('maxBodyByte'))).toBe(true);
  });

  it('refuses an empty match and bad label names', () => {
    expect(alertsConfigSchema.safeParse({ mapping: [{ match: {}, incident: '1' }] }).success).toBe(false);
    expect(
      alertsConfigSchema.safeParse({ mapping: [{ match: { 'bad-label': 'x' }, incident: '1' }] }).success,
    ).toBe(false);
  });
});

describe('incidentForAlert', () => {
  const mapping = DEFAULT_ALERT_MAPPING;

  it.each([
    ['RedisDown', '2'],
    ['RedisUnavailable', '2'],
    ['NginxDown', '1'],
    ['EdgeCacheDown', '1'],
    ['VipDown', '3'],
    ['KeepalivedNoMaster', '3'],
    ['NodeDown', '4'],
    ['PiDown', '4'],
    ['OrchestratorDown', '5'],
    ['UpstreamDown', '5'],
    ['CacheMissStorm', '6'],
    ['RedisHitRatioLow', '6'],
    ['ChaosEnabled', '7'],
  ])('maps %s to incident %s', (alertname, incident) => {
    expect(incidentForAlert({ alertname }, mapping)?.incident).toBe(incident);
  });

  it('anchors regexes like Alertmanager (no partial matches)', () => {
    expect(incidentForAlert({ alertname: 'RedisDownSoon' }, mapping)).toBeUndefined();
    expect(incidentForAlert({ alertname: 'NotRedisDown' }, mapping)).toBeUndefined();
  });

  it('returns undefined for unmapped alerts', () => {
    expect(incidentForAlert({ alertname: 'DiskFull' }, mapping)).toBeUndefined();
    expect(incidentForAlert({}, mapping)).toBeUndefined();
  });

  const nodes = [
    { name: 'pi-a', address: '10.0.0.20' },
    { name: 'pi-b', address: '10.0.0.19' },
  ];

  it('takes the node from `node`, else `instance` without its port', () => {
    expect(incidentForAlert({ alertname: 'NginxDown', instance: 'pi-a:9100' }, mapping, nodes)).toEqual({
      incident: '1',
      node: 'pi-a',
    });
    expect(
      incidentForAlert({ alertname: 'NginxDown', instance: 'x:1', node: 'pi-b' }, mapping, nodes),
    ).toEqual({ incident: '1', node: 'pi-b' });
    expect(incidentForAlert({ alertname: 'VipDown' }, mapping, nodes)).toEqual({ incident: '3' });
  });

  it('resolves an address to the configured node name', () => {
    expect(incidentForAlert({ alertname: 'RedisDown', instance: '10.0.0.19:9121' }, mapping, nodes)).toEqual({
      incident: '2',
      node: 'pi-b',
    });
  });

  it('never takes a label naming no configured node as a node name: it is an unknown node', () => {
    for (const instance of ['10.9.9.9:9121', '[fe80::1]:9100', '<!channel> <@U0VICTIM>', 'pi-c']) {
      expect(incidentForAlert({ alertname: 'RedisDown', instance }, mapping, nodes)).toEqual({
        incident: '2',
        unknownNode: instance,
      });
    }
    expect(incidentForAlert({ alertname: 'NginxDown', node: 'pi-a' }, mapping)).toEqual({
      incident: '1',
      unknownNode: 'pi-a',
    });
  });

  it('honours nodeLabel, exact values, all-labels-must-match, first match wins and case flags', () => {
    const custom: AlertMappingEntry[] = [
      { match: { alertname: 'Down', job: 'redis' }, incident: '2', nodeLabel: 'host' },
      { match: { alertname: 'Down' }, incident: '4' },
      { match: { alertname: '/chaos.*/i' }, incident: '7' },
      { match: { alertname: 'X', team: '/|ops/' }, incident: '6' },
    ];
    expect(incidentForAlert({ alertname: 'Down', job: 'redis', host: 'pi-b' }, custom, nodes)).toEqual({
      incident: '2',
      node: 'pi-b',
    });
    expect(incidentForAlert({ alertname: 'Down', job: 'nginx', host: 'pi-b' }, custom)).toEqual({
      incident: '4',
    });
    expect(incidentForAlert({ alertname: 'CHAOSMonkey' }, custom)?.incident).toBe('7');
    // A missing label matches as the empty string, as in Alertmanager.
    expect(incidentForAlert({ alertname: 'X' }, custom)?.incident).toBe('6');
    expect(incidentForAlert({ alertname: 'X', team: 'dev' }, custom)).toBeUndefined();
  });

  it('does not read labels from the prototype', () => {
    const custom: AlertMappingEntry[] = [{ match: { toString: '/.+/' }, incident: '1' }];
    expect(incidentForAlert({}, custom)).toBeUndefined();
  });
});
