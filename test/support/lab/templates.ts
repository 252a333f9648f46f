import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ASSETS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'assets');

/**
 * Renders an asset template: every `{{NAME}}` must have a value and every value must be used,
 * so a renamed placeholder fails loudly at lab start rather than leaving `{{…}}` in a config.
 */
export function renderTemplate(name: string, values: Readonly<Record<string, string | number>>): string {
  const text = readFileSync(join(ASSETS_DIR, 'templates', name), 'utf8');
  const used = new Set<string>();
  const rendered = text.replace(/\{\{([A-Z_]+)\}\}/g, (_match, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template ${name}: no value for {{${key}}}`);
    used.add(key);
    return String(value);
  });
  const unused = Object.keys(values).filter((key) => !used.has(key));
  if (unused.length > 0) throw new Error(`template ${name}: values never used: ${unused.join(', ')}`);
  return rendered;
}
