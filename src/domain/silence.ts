import { SILENCE_PREFIX, UNSILENCE_PREFIX } from './action-ids.js';

/**
 * Silences from an incident's thread, as data: the durations offered, the buttons' ids and
 * the Alertmanager matchers an alert's labels make. Pure.
 */

export const SILENCE_DURATIONS = { '1h': 60 * 60_000, '4h': 4 * 60 * 60_000 } as const;
export type SilenceDuration = keyof typeof SILENCE_DURATIONS;
export const silenceDurations = Object.keys(SILENCE_DURATIONS) as SilenceDuration[];

/** An Alertmanager API v2 matcher. */
export interface SilenceMatcher {
  readonly name: string;
  readonly value: string;
  readonly isRegex: boolean;
  readonly isEqual: boolean;
}

export function silenceActionId(incidentId: number, duration: SilenceDuration): string {
  return `${SILENCE_PREFIX}${duration}:${incidentId}`;
}

export function unsilenceActionId(incidentId: number): string {
  return `${UNSILENCE_PREFIX}${incidentId}`;
}

function incidentIdOf(text: string | undefined, value: string): number | undefined {
  if (text === undefined || !/^[1-9][0-9]{0,15}$/.test(text) || value !== text) return undefined;
  const id = Number(text);
  return Number.isSafeInteger(id) ? id : undefined;
}

/** A silence button's click: the incident (the button's value must repeat it) and the duration. */
export function parseSilenceAction(
  actionId: string,
  value: string,
): { incidentId: number; duration: SilenceDuration; durationMs: number } | undefined {
  if (!actionId.startsWith(SILENCE_PREFIX)) return undefined;
  const [duration, id, ...rest] = actionId.slice(SILENCE_PREFIX.length).split(':');
  if (rest.length > 0 || duration === undefined || !Object.hasOwn(SILENCE_DURATIONS, duration))
    return undefined;
  const incidentId = incidentIdOf(id, value);
  if (incidentId === undefined) return undefined;
  const d = duration as SilenceDuration;
  return { incidentId, duration: d, durationMs: SILENCE_DURATIONS[d] };
}

/** An "Expire silence" click: the incident whose silences end now. */
export function parseUnsilenceAction(actionId: string, value: string): { incidentId: number } | undefined {
  if (!actionId.startsWith(UNSILENCE_PREFIX)) return undefined;
  const incidentId = incidentIdOf(actionId.slice(UNSILENCE_PREFIX.length), value);
  return incidentId === undefined ? undefined : { incidentId };
}

/**
 * Exact-match equality matchers for every label of the alert, sorted by name: Alertmanager
 * identifies an alert by its whole label set, so this silences that alert and nothing else.
 * Labels with an empty value are absent in Prometheus and are left out.
 */
export function silenceMatchers(labels: Readonly<Record<string, string>>): SilenceMatcher[] {
  return Object.entries(labels)
    .filter(([, value]) => value !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
}

/** One matcher set per distinct label set, in the order first seen. */
export function distinctMatcherSets(
  labelSets: readonly Readonly<Record<string, string>>[],
): SilenceMatcher[][] {
  const seen = new Set<string>();
  const sets: SilenceMatcher[][] = [];
  for (const labels of labelSets) {
    const matchers = silenceMatchers(labels);
    if (matchers.length === 0) continue;
    const key = JSON.stringify(matchers.map((m) => [m.name, m.value]));
    if (seen.has(key)) continue;
    seen.add(key);
    sets.push(matchers);
  }
  return sets;
}

/** `alertname="RedisDown", node="pi-b"`: how a silence's matchers read in Slack. */
export function describeMatchers(matchers: readonly SilenceMatcher[]): string {
  return matchers
    .map((m) => `${m.name}${m.isEqual ? '' : '!'}${m.isRegex ? '=~' : '='}${JSON.stringify(m.value)}`)
    .join(', ');
}
