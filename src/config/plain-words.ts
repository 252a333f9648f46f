import type { z } from 'zod';

const ARTICLE: Readonly<Record<string, string>> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value lines)',
};

function kindOf(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return 'text';
  if (typeof value === 'number') return Number.isInteger(value) ? 'a whole number' : 'a number';
  if (typeof value === 'boolean') return 'true/false';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

// zod's own default messages start like these; a message written in the schema does not.
const ZOD_DEFAULT = /^(Invalid|Too (small|big)|Unrecognized|Expected)/;

/**
 * A schema problem in plain words, where zod's defaults read "Invalid input: expected string,
 * received undefined". `input` is the value at the issue's path (zod 4 leaves issue.input unset).
 */
export function plainMessage(issue: z.core.$ZodIssue, input: unknown): string {
  if (!ZOD_DEFAULT.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return input === undefined
        ? 'missing'
        : `must be ${ARTICLE[issue.expected] ?? issue.expected}, not ${kindOf(input)}`;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? 'at least' : 'at most';
      const n = String(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      if (issue.origin === 'array' || issue.origin === 'set') return `needs ${bound} ${n} item(s)`;
      if (issue.origin === 'string') return `must be ${bound} ${n} character(s) long`;
      return `must be ${bound} ${n}`;
    }
    case 'invalid_value':
      return `must be one of: ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return `is not a valid ${issue.format}`;
    case 'invalid_union':
      return 'matches none of the forms allowed here';
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    default:
      return 'is not allowed here';
  }
}
