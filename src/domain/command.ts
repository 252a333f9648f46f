import { z } from 'zod';
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
  | { readonly kind: 'invalid'; readonly problem: string };

const TARGET = z.string().regex(/^[a-z0-9][a-z0-9:@.-]{0,63}$/);
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
    default:
      return { kind: 'invalid', problem: `Unknown command \`${verb.slice(0, 32)}\`.` };
  }
}
