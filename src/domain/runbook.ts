import type { CheckId } from './check-result.js';

/**
 * The OKOME cache runbook as data, one table: each incident's symptoms, the checks that look at
 * it (`/okome check <n>`), actions, verification and follow-up; the checks that verify each
 * catalogue action; the golden rules. The classifier proposes actions by catalogue id from
 * here; `/okome incident <n>` renders the card from here.
 */

export const incidentNumbers = ['1', '2', '3', '4', '5', '5b', '6', '7'] as const;
export type IncidentNumber = (typeof incidentNumbers)[number];

export interface RunbookIncident {
  readonly number: IncidentNumber;
  readonly title: string;
  readonly symptoms: readonly string[];
  readonly impact: string;
  readonly immediate: readonly string[];
  /** The checks that look at this incident (`/okome check <n>`). */
  readonly checks: readonly CheckId[];
  /** Catalogue ids the runbook's fix maps to; empty = the runbook says do nothing on cache nodes. */
  readonly actions: readonly string[];
  readonly verification: readonly string[];
  readonly followUps: readonly string[];
}

export const runbook: Readonly<Record<IncidentNumber, RunbookIncident>> = {
  '1': {
    number: '1',
    title: 'UI is slow or blank',
    symptoms: ['Browser hangs', 'UI loads slowly', 'Assets partially missing'],
    impact: 'Users wait or see a broken UI.',
    immediate: [
      '`curl -I http://VIP/`: HIT = cache working, MISS = upstream load, 503 = failover/maintenance',
      'On the frontend Pi: `systemctl status nginx`; if nginx is down: `sudo systemctl restart nginx`',
    ],
    checks: [
      'vip-http',
      'vip-canary',
      'node-http',
      'service',
      'nginx-hit-ratio',
      'prewarm-timer',
      'vip-addr',
      'vip-owner',
    ],
    actions: ['restart-nginx'],
    verification: ['`curl -I http://VIP/` answers 200 with X-OKOME-Node and X-Cache-Status'],
    followUps: [
      'Check the prewarm timer: `systemctl status okome-prewarm.timer`',
      'Review the hit ratio in /var/log/nginx/okome_access.log (cache=HIT|MISS)',
    ],
  },
  '2': {
    number: '2',
    title: 'Redis cache unavailable',
    symptoms: ['Planner responses slower', 'GPU load spikes', '`X-OKOME-Cache: MISS` frequently'],
    impact: 'System remains functional: Redis is non-authoritative, the planner recomputes safely.',
    immediate: [
      '`redis-cli -h BACKEND ping`; if no PONG: `sudo systemctl restart redis-server` on the backend',
    ],
    checks: ['redis-ping', 'service', 'redis-budget'],
    actions: ['restart-redis'],
    verification: ['PING answers PONG', '`INFO stats` shows keyspace hits/misses'],
    followUps: ['Count agent budget keys (okome:budget:*)', 'Look for runaway agents'],
  },
  '3': {
    number: '3',
    title: 'VIP not responding',
    symptoms: ['`curl http://VIP` fails', "Browser can't connect"],
    impact: 'Clients cannot reach the cache layer through the VIP.',
    immediate: [
      'Check which Pi owns the VIP: `ip addr show`',
      'If neither owns it: `sudo systemctl restart keepalived` on both Pis',
    ],
    checks: ['vip-addr', 'vip-owner', 'vip-http', 'service', 'keepalived-journal'],
    actions: ['restart-keepalived'],
    verification: ['`curl -I http://VIP/` answers'],
    followUps: ['Inspect keepalived logs: `journalctl -u keepalived --since "10 minutes ago"`'],
  },
  '4': {
    number: '4',
    title: 'Frontend Pi is dead (power, SD, kernel panic)',
    symptoms: ['SSH unreachable', 'No response on its static IP', 'VIP moved'],
    impact: 'None expected: the cold spare claims the VIP in about 2 s and serves (possibly stale) cache.',
    immediate: ['Nothing immediately. Confirm `curl -I http://VIP/` answers from the spare.'],
    checks: ['ssh', 'node-http', 'vip-addr', 'vip-owner', 'vip-http'],
    actions: [],
    verification: ['The VIP answers from the spare'],
    followUps: [
      'Reflash the dead Pi with the golden image; it boots as the new cold spare',
      'Replace the SD card if this repeats',
      'Check the power supply (common Pi failure)',
    ],
  },
  '5': {
    number: '5',
    title: 'Upstream orchestrator down',
    symptoms: ['`/api/*` returns 503', 'UI still loads', '`X-Cache-Status: HIT` or `UPDATING`'],
    impact: 'The edge serves stale UI; planner/API calls fail gracefully.',
    immediate: ['Fix the orchestrator. Do NOT touch cache nodes.'],
    checks: ['orch-health', 'vip-api', 'vip-http'],
    actions: [],
    verification: [
      'Orchestrator `/health` answers',
      '`curl -I http://VIP/` and `curl -I http://VIP/api/planner` answer',
    ],
    followUps: ['Fix the orchestrator'],
  },
  '5b': {
    number: '5b',
    title: 'Streaming slow or orchestrator path issues',
    symptoms: ['Streaming slow', 'Frontend answers 503 while the orchestrator is unhealthy'],
    impact: 'Streamed API answers arrive late or buffered.',
    immediate: [
      'Check the orchestrator `/health`; if it fails, fix the orchestrator',
      'Ensure the frontend API/stream locations have `proxy_buffering off`, `proxy_request_buffering off`, `proxy_read_timeout 600s`, `proxy_send_timeout 600s`',
    ],
    checks: ['orch-health', 'streaming', 'node-http'],
    actions: [],
    verification: ['Orchestrator `/health`', 'Frontend `/` and `/health`'],
    followUps: ['Restore the streaming directives in the nginx config (see the missing list)'],
  },
  '6': {
    number: '6',
    title: 'Cache miss storm / GPU overload',
    symptoms: ['Redis hit ratio drops', 'GPU pegged', 'High planner latency'],
    impact: 'The planner recomputes; GPU saturates.',
    immediate: [
      'Inspect with the canary bypass: `curl -I -H "X-OKOME-Canary: debug" http://VIP/ui-schema/foo`',
      'Check agent budgets (okome:budget:rl:*)',
      'Temporarily clamp budgets (safe): FLUSHDB — Redis is cache-only',
    ],
    checks: ['redis-hit-ratio', 'redis-budget', 'redis-ping', 'vip-canary'],
    actions: ['flush-redis'],
    verification: ['PING answers', 'No rate-limit counter at or over its limit', 'Hit ratio recovering'],
    followUps: ['Reduce TTL churn', 'Tune prewarm filters', 'Inspect planner cache keys'],
  },
  '7': {
    number: '7',
    title: 'Chaos test triggered accidentally',
    symptoms: ['nginx/redis stopped unexpectedly', 'iptables rules appear'],
    impact: 'Services stopped or traffic dropped by test rules.',
    immediate: [
      'Remove /etc/okome/CHAOS_ENABLE first, so chaos cannot strike again',
      '`sudo iptables -F`',
      'Restart the services the node runs',
    ],
    checks: ['chaos-flag', 'firewall', 'service'],
    actions: ['disable-chaos'],
    verification: ['Services active', 'No unexpected iptables rules', 'Chaos flag gone'],
    followUps: ['Find out who enabled chaos'],
  },
};

/** The runbook's "Verification" per catalogue action, when the configuration names no checks. */
export const actionVerification: Readonly<Record<string, readonly CheckId[]>> = {
  'restart-nginx': ['service', 'node-http', 'vip-http'],
  'restart-redis': ['redis-ping', 'service'],
  'restart-keepalived': ['service', 'vip-owner', 'vip-http'],
  'flush-redis': ['redis-ping', 'redis-budget'],
  'disable-chaos': ['chaos-flag', 'firewall', 'service'],
};

export const goldenRules: readonly string[] = [
  'Never debug cache nodes first: they are symptoms, not causes',
  'Redis can always be flushed: it is safe by design',
  'VIP failure ≠ outage: check which node owns it',
  'If in doubt, reflash the Pi: faster than debugging SD weirdness',
  'Caches are cattle: treat them as replaceable',
];
