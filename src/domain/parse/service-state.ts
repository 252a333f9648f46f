import { excerpt, splitLines, type Unknown, unknown } from './result.js';

/** The ActiveState values systemd reports (`refreshing` is systemd 256+). */
export const serviceActiveStates = [
  'active',
  'reloading',
  'refreshing',
  'inactive',
  'failed',
  'activating',
  'deactivating',
  'maintenance',
] as const;
export type ServiceActiveState = (typeof serviceActiveStates)[number];

export type ServiceState = { readonly kind: ServiceActiveState } | { readonly kind: 'not-found' } | Unknown;

export function isServiceActiveState(word: string): word is ServiceActiveState {
  return (serviceActiveStates as readonly string[]).includes(word);
}

// systemctl is-active exits 0 exactly for these (UNIT_IS_ACTIVE_OR_RELOADING), 3 otherwise.
const RUNNING: ReadonlySet<ServiceActiveState> = new Set(['active', 'reloading', 'refreshing']);
const EXIT_NO_SUCH_UNIT = 4;

/**
 * Reads `systemctl is-active UNIT`. Note that systemd answers `inactive` (exit 3), not exit 4,
 * for a unit it has never heard of; exit 4 still means "no such unit" where it occurs.
 * A word that disagrees with the exit code is reported, not guessed at.
 */
export function parseServiceState(stdout: string, exitCode: number | null): ServiceState {
  if (exitCode === EXIT_NO_SUCH_UNIT) return { kind: 'not-found' };
  if (exitCode === null) return unknown('systemctl is-active ended without an exit status (killed?)');
  const lines = splitLines(stdout)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const [word, ...rest] = lines;
  if (word === undefined) {
    // e.g. "System has not been booted with systemd" (exit 1), which goes to stderr only.
    return unknown(`systemctl is-active printed nothing (exit ${exitCode})`);
  }
  if (rest.length > 0)
    return unknown(`expected one state word, got ${lines.length} lines: ${excerpt(stdout)}`);
  if (word === 'unknown') return unknown(`systemctl reported the state as "unknown" (exit ${exitCode})`);
  if (!isServiceActiveState(word)) return unknown(`not a systemd unit state: ${excerpt(word)}`);
  if (RUNNING.has(word) !== (exitCode === 0)) {
    return unknown(`state "${word}" contradicts exit code ${exitCode}`);
  }
  return { kind: word };
}
