import { z } from 'zod';
import { type DrillKind, drillKinds } from './drill.js';
import { type IncidentNumber, incidentNumbers } from './runbook.js';

/**
 * `/okome` text → a command. Chat text is parsed here and nowhere else; no part of it ever
 * reaches a shell: a check target is only matched against configured names.
 */
export type OkomeCommand =
  | { readonly kind: 'status' }
  | { readonly kind: 'validate' }
  | { readonly kind: 'check'; readonly target: string }
  | { readonly kind: 'incident'; readonly number: IncidentNumber }
  | { readonly kind: 'help' }
  /** Closes an incident by hand: by key ("1:pi-a"), by number (the newest open one), or the newest. */
  | { readonly kind: 'resolve'; readonly incident: string | undefined }
  /** The incident's timeline as markdown, for a postmortem. */
  | { readonly kind: 'timeline'; readonly incident: string | undefined }
  /** The post-incident report of an incident (open or resolved): its Markdown in its thread. */
  | { readonly kind: 'report'; readonly incident: string | undefined }
  /** Rehearses a runbook incident on purpose: measured, then restored (two-person for failover). */
  | { readonly kind: 'drill'; readonly drill: DrillKind }
  /** Each runbook incident: what detects and fixes it, when last seen, fixed, verified and drilled. */
  | { readonly kind: 'coverage' }
  | { readonly kind: 'invalid'; readonly problem: string };

const TARGET = z.string().regex(/^[a-z0-9][a-z0-9:@.-]{0,63}$/);
// Incident keys: "1:pi-a", "3:pi-a,pi-b", "failover:pi-a", "alert:redisdown", or a number.
const INCIDENT_REF = z.string().regex(/^[a-z0-9][a-z0-9:,._-]{0,127}$/);
const words = z
  .string()
  .max(500)
  .transform((s) =>
    s
      .trim()
      .split(/\s+/)
      .filter((w) => w !== ''),
  );

export function parseCommand(text: unknown, targets: readonly string[]): OkomeCommand {
  const parsed = words.safeParse(text ?? '');
  if (!parsed.success) return { kind: 'invalid', problem: 'That command is too long.' };
  const [verb = 'help', ...args] = parsed.data.map((w) => w.toLowerCase());
  const extra = (n: number) =>
    args.length > n ? `\`${verb}\` takes ${n === 0 ? 'no argument' : `${n} argument`}.` : undefined;
  switch (verb) {
    case 'status':
    case 'validate':
    case 'coverage':
    case 'help': {
      const problem = extra(0);
      return problem ? { kind: 'invalid', problem } : { kind: verb };
    }
    case 'check': {
      const target = args[0];
      if (target === undefined || extra(1))
        return {
          kind: 'invalid',
          problem: '`check` takes one target: a check id, a node or an incident number.',
        };
      if (!TARGET.safeParse(target).success || !targets.includes(target)) {
        return {
          kind: 'invalid',
          problem: `Unknown check target \`${target.slice(0, 64)}\`. Try one of: ${targets.join(', ')}.`,
        };
      }
      return { kind: 'check', target };
    }
    case 'incident': {
      const n = args[0];
      const number = incidentNumbers.find((x) => x === n);
      if (number === undefined || extra(1))
        return { kind: 'invalid', problem: `\`incident\` takes one of: ${incidentNumbers.join(', ')}.` };
      return { kind: 'incident', number };
    }
    case 'resolve':
    case 'timeline':
    case 'report': {
      const ref = args[0];
      if (extra(1))
        return {
          kind: 'invalid',
          problem: `\`${verb}\` takes at most one incident (a key like 1:pi-a, or a number).`,
        };
      if (ref !== undefined && !INCIDENT_REF.safeParse(ref).success) {
        return { kind: 'invalid', problem: `\`${ref.slice(0, 64)}\` is not an incident key or number.` };
      }
      return { kind: verb, incident: ref };
    }
    case 'drill': {
      const drill = drillKinds.find((k) => k === args[0]);
      if (drill === undefined || extra(1))
        return { kind: 'invalid', problem: `\`drill\` takes one of: ${drillKinds.join(', ')}.` };
      return { kind: 'drill', drill };
    }
    default:
      return { kind: 'invalid', problem: `Unknown command \`${verb.slice(0, 32)}\`.` };
  }
}
