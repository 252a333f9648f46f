import { stringify } from 'yaml';
import { type LoadedConfig, parseConfig } from '../../src/config/load-config.js';
import type { ConfigInput } from '../../src/config/schema.js';

/** A two-Pi configuration like the lab's, with the runbook's action catalogue. */
export function fixtureInput(): ConfigInput {
  const ssh = (hostKeyChar: string) => ({
    port: 22,
    user: 'okome',
    privateKeyPath: '/etc/okome/id_ed25519',
    hostKey: `SHA256:${hostKeyChar.repeat(43)}`,
  });
  return {
    nodes: [
      {
        name: 'pi-a',
        roles: ['frontend'],
        address: '10.86.0.20',
        ssh: ssh('A'),
        services: ['nginx', 'keepalived'],
      },
      {
        name: 'pi-b',
        roles: ['backend', 'spare'],
        address: '10.86.0.19',
        ssh: ssh('B'),
        services: ['redis-server', 'nginx', 'keepalived'],
      },
    ],
    vip: { address: '10.86.0.18' },
    orchestrator: { baseUrl: 'http://10.86.0.25:8000' },
    redis: { host: '10.86.0.19', port: 6379, db: 0 },
    actions: [
      {
        id: 'restart-nginx',
        title: 'Restart nginx',
        targets: { roles: ['frontend'] },
        steps: [{ run: 'serviceRestart', service: 'nginx' }],
        verify: { checks: ['vip-http', 'service'], windowMs: 10_000 },
      },
      {
        id: 'restart-redis',
        title: 'Restart redis-server',
        targets: { roles: ['backend'] },
        steps: [{ run: 'serviceRestart', service: 'redis-server' }],
        verify: { checks: ['redis-ping'] },
      },
      {
        id: 'restart-keepalived',
        title: 'Restart keepalived on both Pis',
        targets: { nodes: ['pi-a', 'pi-b'] },
        steps: [{ run: 'serviceRestart', service: 'keepalived' }],
        sequential: true,
        verify: { checks: ['vip-owner', 'vip-http'], windowMs: 10_000 },
      },
      {
        id: 'flush-redis',
        title: 'Flush Redis (FLUSHDB)',
        targets: { roles: ['backend'] },
        steps: [{ redis: 'flushdb' }],
        approvals: 2,
        verify: { checks: ['redis-ping', 'redis-budget'] },
      },
      {
        id: 'disable-chaos',
        title: 'Disable chaos, flush iptables, restart services',
        targets: { roles: ['frontend', 'backend'] },
        steps: [
          { run: 'chaosFlagRemove' },
          { run: 'firewallFlush' },
          { run: 'serviceRestart', service: 'nginx' },
          { run: 'serviceRestart', service: 'redis-server' },
          { run: 'serviceRestart', service: 'keepalived' },
        ],
        approvals: 2,
        risk: 'high',
        verify: { checks: ['chaos-flag', 'firewall', 'service'] },
      },
    ],
    slack: { incidentChannel: 'C0INCIDENT', approvers: { users: ['U0APPROVER1', 'U0APPROVER2'] } },
  };
}

export function fixtureConfig(change?: (input: ConfigInput) => void): LoadedConfig {
  const input = fixtureInput();
  change?.(input);
  return parseConfig(stringify(input), '/etc/okome/okome.yml');
}
