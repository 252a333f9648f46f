import { excerpt, splitLines, type Unknown, unknown } from './result.js';
import { isServiceActiveState, type ServiceActiveState } from './service-state.js';

export interface UnitLoadInfo {
  /** `loaded`, `masked`, `not-found`, `bad-setting`, `error`… */
  readonly state: string;
  readonly path: string | null;
  /** `enabled`, `disabled`, `static`, `masked`… */
  readonly enablement: string | null;
  readonly preset: string | null;
}

export interface TimerTrigger {
  /** As systemd printed it, e.g. `Sun 2026-11-29 03:20:00 UTC`. */
  readonly at: string;
  /** e.g. `2min 3s left`. */
  readonly relative: string | null;
}

export interface SystemctlStatus {
  readonly kind: 'status';
  readonly unit: string;
  readonly description: string | null;
  readonly loaded: UnitLoadInfo | null;
  readonly activeState: ServiceActiveState;
  /** `running`, `waiting`, `dead`…; null when systemd printed a result instead. */
  readonly subState: string | null;
  /** `exit-code`, `timeout`… from `(Result: …)`, shown for failed units. */
  readonly result: string | null;
  readonly since: string | null;
  /** Timers only: the next elapse; null when systemd shows `n/a` or no Trigger line. */
  readonly trigger: TimerTrigger | null;
  /** Timers only: the units it triggers. */
  readonly triggers: readonly string[];
}

export type SystemctlStatusResult =
  | SystemctlStatus
  | { readonly kind: 'not-found'; readonly unit: string | null }
  | Unknown;

// First line: a state glyph (● ○ × ↻, or * o x without a UTF-8 locale), the unit, " - description".
const UNIT_LINE = /^(?:\S\s+)?([A-Za-z0-9@:._\\-]+\.[a-z]+)(?:\s+-\s+(.*))?$/;
const FIELD_LINE = /^\s*([A-Z][A-Za-z-]*(?: [A-Z][A-Za-z-]*)?):\s(.*)$/;
// `activating (auto-restart) (Result: exit-code) since …` carries both a sub-state and a result.
const ACTIVE_VALUE = /^(\S+)((?:\s+\([^)]*\))*)(?:\s+since\s+(.*))?$/;
// Longer header lines are not systemd's; skipping them keeps every regex here linear.
const MAX_LINE = 4096;
const NOT_FOUND = /^Unit (\S+) could not be found\.$/;

/** Reads `systemctl status UNIT --no-pager`: the header block only, never the journal excerpt. */
export function parseSystemctlStatus(stdout: string, exitCode: number | null): SystemctlStatusResult {
  const lines = splitLines(stdout);
  const firstIndex = lines.findIndex((l) => l.trim() !== '');
  const first = lines[firstIndex];
  // Only as the first line: the journal excerpt of a unit that exists may quote this message.
  const missing = first === undefined || first.length > MAX_LINE ? null : NOT_FOUND.exec(first.trim());
  if (missing) return { kind: 'not-found', unit: missing[1] ?? null };
  if (first === undefined) {
    return exitCode === 4
      ? { kind: 'not-found', unit: null }
      : unknown(`systemctl status printed nothing (exit ${exitCode ?? 'none'})`);
  }
  const head = first.length > MAX_LINE ? null : UNIT_LINE.exec(first.trim());
  if (!head?.[1]) return unknown(`first line is not a unit header: ${excerpt(first)}`);
  const unit = head[1];

  const fields = new Map<string, string[]>();
  let last: string[] | undefined;
  // The header ends at the first blank line; the journal excerpt follows.
  for (let i = firstIndex + 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') break;
    if (line.length > MAX_LINE) continue;
    const field = FIELD_LINE.exec(line);
    if (field?.[1] !== undefined && field[2] !== undefined) {
      last = [field[2].trim()];
      fields.set(field[1], last);
    } else if (/^\s/.test(line) && last) {
      last.push(line.trim()); // continuation of a multi-line field (Docs, Triggers, CGroup…)
    }
  }

  const loaded = parseLoaded(fields.get('Loaded')?.[0]);
  if (loaded?.state === 'not-found') return { kind: 'not-found', unit };
  const activeText = fields.get('Active')?.[0];
  if (activeText === undefined) return unknown(`no "Active:" line in the status of ${unit}`);
  const active = ACTIVE_VALUE.exec(activeText);
  const state = active?.[1];
  if (!active || state === undefined || !isServiceActiveState(state)) {
    return unknown(`unrecognised Active line for ${unit}: ${excerpt(activeText)}`);
  }
  const parens = [...(active[2] ?? '').matchAll(/\(([^)]*)\)/g)].map((p) => (p[1] ?? '').trim());
  const result = parens.find((p) => p.startsWith('Result:'));

  return {
    kind: 'status',
    unit,
    description: head[2]?.trim() || null,
    loaded,
    activeState: state,
    subState: parens.find((p) => !p.startsWith('Result:')) ?? null,
    result: result === undefined ? null : result.slice('Result:'.length).trim(),
    since: active[3]?.split(';', 1)[0]?.trim() || null,
    trigger: parseTrigger(fields.get('Trigger')?.[0]),
    triggers: (fields.get('Triggers') ?? []).map(stripGlyph).filter((u) => u !== ''),
  };
}

function parseLoaded(text: string | undefined): UnitLoadInfo | null {
  if (text === undefined) return null;
  const m = /^(\S+)(?:\s+\((.*)\))?/.exec(text);
  if (!m?.[1]) return null;
  const parts = (m[2] ?? '').split(';').map((p) => p.trim());
  const reason = parts[0]?.startsWith('Reason:') ?? false;
  const preset = parts.find((p) => /^(?:vendor )?preset:/.test(p));
  return {
    state: m[1],
    path: !reason && parts[0] ? parts[0] : null,
    enablement: !reason && parts[1] && !parts[1].includes(':') ? parts[1] : null,
    preset: preset ? preset.slice(preset.indexOf(':') + 1).trim() : null,
  };
}

function parseTrigger(text: string | undefined): TimerTrigger | null {
  if (text === undefined || text === 'n/a') return null;
  const semi = text.indexOf(';');
  if (semi < 0) return { at: text, relative: null };
  return { at: text.slice(0, semi).trim(), relative: text.slice(semi + 1).trim() || null };
}

function stripGlyph(text: string): string {
  return text.replace(/^\S\s+/, '').trim();
}
