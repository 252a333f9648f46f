import { excerpt, parseCount, splitLines, type Unknown, unknown } from './result.js';

export interface DfMount {
  readonly filesystem: string;
  readonly sizeKb: number;
  readonly usedKb: number;
  readonly availKb: number;
  /** df's own Capacity figure (used / (used + available), rounded up); null when df prints `-`. */
  readonly usePercent: number | null;
  readonly mount: string;
}

export interface DfMounts {
  readonly kind: 'mounts';
  readonly mounts: readonly DfMount[];
  readonly skippedLines: number;
}

export type DfResult = DfMounts | Unknown;

// POSIX header; `512-blocks` when POSIXLY_CORRECT is set, `1K-blocks`/`Use%` from plain df.
const HEADER = /^Filesystem\s+(\d+)(K?)-blocks\s+Used\s+Avail(?:able)?\s+(?:Capacity|Use%)\s+Mounted on\s*$/;
const CAPACITY = /^(?:\d{1,3}%|-)$/;

/** Reads `df -P PATH…`. */
export function parseDf(stdout: string): DfResult {
  const lines = splitLines(stdout).filter((l) => l.trim() !== '');
  const headerIndex = lines.findIndex((l) => HEADER.test(l));
  const header = HEADER.exec(lines[headerIndex] ?? '');
  if (!header) return unknown(`no df -P header line in ${excerpt(lines[0] ?? stdout)}`);
  const blockBytes = Number(header[1]) * (header[2] === 'K' ? 1024 : 1);
  if (!Number.isSafeInteger(blockBytes) || blockBytes <= 0)
    return unknown(`odd df block size ${excerpt(header[1] ?? '')}`);
  const toKb = (blocks: number) => (blocks * blockBytes) / 1024;

  const mounts: DfMount[] = [];
  const rows = lines.slice(headerIndex + 1);
  for (const line of rows) {
    const row = parseRow(line);
    if (row)
      mounts.push({ ...row, sizeKb: toKb(row.sizeKb), usedKb: toKb(row.usedKb), availKb: toKb(row.availKb) });
  }
  if (mounts.length === 0) return unknown('df -P printed a header but no filesystem rows');
  return { kind: 'mounts', mounts, skippedLines: rows.length - mounts.length };
}

/**
 * One row, in blocks. Found by the shape of its four numeric columns rather than by position,
 * because a filesystem name or a mount point may contain spaces.
 */
function parseRow(line: string): DfMount | null {
  const words = line.trim().split(/\s+/);
  for (let i = 1; i + 4 < words.length; i++) {
    const capacity = words[i + 3] ?? '';
    const size = parseCount(words[i] ?? '');
    const used = parseCount(words[i + 1] ?? '');
    const avail = parseCount(words[i + 2] ?? '');
    if (size === null || used === null || avail === null || !CAPACITY.test(capacity)) continue;
    const mount = words.slice(i + 4).join(' ');
    if (!mount.startsWith('/')) continue;
    const percent = capacity === '-' ? null : Number(capacity.slice(0, -1));
    return {
      filesystem: words.slice(0, i).join(' '),
      sizeKb: size,
      usedKb: used,
      availKb: avail,
      usePercent: percent !== null && percent <= 100 ? percent : null,
      mount,
    };
  }
  return null;
}

export function mountAt(parsed: DfMounts, mount: string): DfMount | undefined {
  return parsed.mounts.find((m) => m.mount === mount);
}
