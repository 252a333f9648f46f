import type { Lab } from './lab.js';
import { LAB_ALERTMANAGER_TOKEN, PORTS } from './topology.js';

/** Alertmanager's side of the lab: the webhook bodies it sends, posted to the bot in the lab. */

/** A v4 webhook body with one RedisDown alert on pi-b (its exporter's instance label). */
export function redisDownAlert(
  status: 'firing' | 'resolved',
  startsAt: string,
  fingerprint = 'c0ffee0000000001',
): Record<string, unknown> {
  const labels = { alertname: 'RedisDown', instance: '10.86.0.19:9121', severity: 'page' };
  const annotations = { summary: 'Redis is down' };
  return {
    version: '4',
    groupKey: '{}:{alertname="RedisDown"}',
    truncatedAlerts: 0,
    status,
    receiver: 'okome',
    groupLabels: { alertname: 'RedisDown' },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: 'http://alertmanager.lab:9093',
    alerts: [
      {
        status,
        labels,
        annotations,
        startsAt,
        endsAt: status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus.lab/graph',
        fingerprint,
      },
    ],
  };
}

/** POSTs a body to the bot's Alertmanager webhook in the lab; returns the HTTP status. */
export async function postAlert(lab: Lab, body: unknown): Promise<number> {
  const r = await fetch(`http://${lab.botAddress}:${PORTS.botHttp}/alerts/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${LAB_ALERTMANAGER_TOKEN}` },
    body: JSON.stringify(body),
  });
  await r.text();
  return r.status;
}
