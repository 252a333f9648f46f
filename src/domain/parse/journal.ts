import { excerpt, splitLines, type Unknown, unknown } from './result.js';

export interface JournalEntry {
  /** As journalctl printed it (`Nov 29 03:12:07`; the short format has no year or zone). */
  readonly time: string;
  readonly host: string;
  readonly ident: string;
  readonly pid: number | null;
  /** Multi-line messages keep their continuation lines, joined with `\n`. */
  readonly message: string;
}

export interface Journal {
  readonly kind: 'journal';
  readonly entries: readonly JournalEntry[];
  /** journalctl said `-- No entries --`. */
  readonly noEntries: boolean;
  /** `-- Boot … --` / `-- Reboot --` separators seen: the node restarted within the window. */
  readonly boots: number;
  readonly skippedLines: number;
}

export type JournalResult = Journal | Unknown;

export type KeepalivedState = 'MASTER' | 'BACKUP' | 'FAULT';

export interface KeepalivedTransition {
  readonly time: string;
  readonly host: string;
  /** The VRRP instance (`VI_1`), when the line names one. */
  readonly instance: string | null;
  readonly state: KeepalivedState;
  readonly message: string;
}

// short (`Nov 29 03:12:07`, day may be space-padded) or short-iso (`2026-11-29T03:12:07+0000`).
const TIME =
  /^(?:[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d(?:\.\d{1,6})?|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:?\d\d)?) /;
const META = /^-- .* --$/;
const PID_SUFFIX = /\[(\d{1,10})\]$/;

/** Reads `journalctl … --no-pager` in the default short format. */
export function parseJournal(stdout: string): JournalResult {
  const lines = splitLines(stdout);
  const entries: { time: string; host: string; ident: string; pid: number | null; message: string }[] = [];
  let noEntries = false;
  let boots = 0;
  let meta = 0;
  let skipped = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    if (META.test(line)) {
      meta++;
      if (line === '-- No entries --') noEntries = true;
      else if (line.startsWith('-- Boot ') || line === '-- Reboot --') boots++;
      continue;
    }
    const entry = parseEntry(line);
    if (entry) {
      entries.push(entry);
      continue;
    }
    const previous = entries[entries.length - 1];
    // journalctl indents the continuation lines of a multi-line message.
    if (previous && /^\s/.test(line)) previous.message += `\n${line.trim()}`;
    else skipped++;
  }
  if (entries.length === 0 && meta === 0) {
    return unknown(
      lines.length === 0 ? 'journalctl printed nothing' : `no journal lines recognised in ${excerpt(stdout)}`,
    );
  }
  return { kind: 'journal', entries, noEntries, boots, skippedLines: skipped };
}

/** `time host ident[pid]: message`; the ident ends at the first colon followed by a space. */
function parseEntry(line: string): JournalEntry | null {
  const time = TIME.exec(line)?.[0];
  if (time === undefined) return null;
  const hostEnd = line.indexOf(' ', time.length);
  if (hostEnd <= time.length) return null;
  const host = line.slice(time.length, hostEnd);
  let colon = line.indexOf(':', hostEnd + 1);
  while (colon >= 0 && colon + 1 < line.length && line[colon + 1] !== ' ')
    colon = line.indexOf(':', colon + 1);
  if (colon <= hostEnd + 1) return null;
  const tag = line.slice(hostEnd + 1, colon);
  const pid = PID_SUFFIX.exec(tag);
  return {
    time: time.trim(),
    host,
    ident: pid ? tag.slice(0, pid.index) : tag,
    pid: pid?.[1] === undefined ? null : Number(pid[1]),
    message: line.slice(colon + 2),
  };
}

// keepalived 2.x: `(VI_1) Entering MASTER STATE`; 1.x: `VRRP_Instance(VI_1) Entering MASTER STATE`.
const TRANSITION = /(?:\(([^()\s]{1,64})\)\s+)?Entering (MASTER|BACKUP|FAULT) STATE/;

/** keepalived's VRRP state changes, in journal order. */
export function keepalivedTransitions(entries: readonly JournalEntry[]): KeepalivedTransition[] {
  const transitions: KeepalivedTransition[] = [];
  for (const entry of entries) {
    const m = TRANSITION.exec(entry.message);
    const state = m?.[2];
    if (state !== 'MASTER' && state !== 'BACKUP' && state !== 'FAULT') continue;
    transitions.push({
      time: entry.time,
      host: entry.host,
      instance: m?.[1] ?? null,
      state,
      message: entry.message,
    });
  }
  return transitions;
}
