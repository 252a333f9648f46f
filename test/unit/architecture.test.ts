import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers stay where they are: pure domain code imports no I/O (only zod for parsing, and
 * its own files); the use cases (incidents, remediation) know nothing of Slack; only src/slack
 * imports @slack/*.
 */

const SRC = join(import.meta.dirname, '../../src');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every module a file imports or re-exports, statically or dynamically. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/g),
    ...text.matchAll(/(?:^|\n)\s*import\s+'([^']+)'/g),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ];
  return specs.map((m) => m[1] ?? '');
}

function violations(dir: string, allowed: (spec: string, file: string) => boolean): string[] {
  return filesUnder(join(SRC, dir)).flatMap((file) =>
    importsOf(file)
      .filter((spec) => !allowed(spec, file))
      .map((spec) => `${relative(SRC, file)} imports ${spec}`),
  );
}

describe('architecture', () => {
  it('finds the imports it checks (the scanner itself works)', () => {
    expect(importsOf(join(SRC, 'app.ts'))).toContain('./incidents/incident-service.js');
    expect(filesUnder(join(SRC, 'domain')).length).toBeGreaterThan(5);
  });

  it('src/domain imports no I/O: only zod and other domain files', () => {
    expect(
      violations('domain', (spec, file) => {
        if (spec === 'zod') return true;
        if (!spec.startsWith('.')) return false;
        return relative(join(SRC, 'domain'), join(file, '..', spec)).split('/')[0] !== '..';
      }),
    ).toEqual([]);
  });

  it('src/incidents and src/remediation import nothing of Slack', () => {
    const noSlack = (spec: string) => !spec.startsWith('@slack/') && !/(^|\/)slack\//.test(spec);
    expect([...violations('incidents', noSlack), ...violations('remediation', noSlack)]).toEqual([]);
  });

  it('only src/slack imports @slack/*', () => {
    const outside = filesUnder(SRC).filter((f) => !relative(SRC, f).startsWith('slack/'));
    const found = outside.flatMap((file) =>
      importsOf(file)
        .filter((spec) => spec.startsWith('@slack/'))
        .map((spec) => `${relative(SRC, file)} imports ${spec}`),
    );
    expect(found).toEqual([]);
  });
});
