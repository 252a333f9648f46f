import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = join(import.meta.dirname, '../..');
// Slack's published schema, vendored with its licence (vendor/slack-manifest-schema/README.md).
const schemaPath = join(root, 'vendor/slack-manifest-schema/manifest.schema.1.0.0.json');

describe('manifest.yml', () => {
  it("validates against Slack's app-manifest schema 1.0", () => {
    expect(existsSync(schemaPath), `Slack's manifest schema is expected at ${schemaPath}`).toBe(true);
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')));
    const manifest: unknown = parse(readFileSync(join(root, 'manifest.yml'), 'utf8'));
    const ok = validate(manifest);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('declares /okome, Socket Mode, interactivity and the bot scopes the bot uses', () => {
    const m = parse(readFileSync(join(root, 'manifest.yml'), 'utf8'));
    expect(m.features.slash_commands.map((c: { command: string }) => c.command)).toEqual(['/okome']);
    expect(m.settings.socket_mode_enabled).toBe(true);
    expect(m.settings.interactivity.is_enabled).toBe(true);
    expect(m.oauth_config.scopes.bot).toEqual(
      expect.arrayContaining(['commands', 'chat:write', 'usergroups:read', 'users:read']),
    );
    expect(m.display_information.name.length).toBeLessThanOrEqual(35);
  });
});

// Each Web API method the code calls, with the bot scope Slack requires for it (none: auth.test,
// chat.getPermalink). A method missing here fails the test below: add it with its scope.
const METHOD_SCOPES: Readonly<Record<string, string | undefined>> = {
  'auth.test': undefined,
  'chat.postMessage': 'chat:write',
  'chat.update': 'chat:write',
  'chat.postEphemeral': 'chat:write',
  'chat.getPermalink': undefined,
  'usergroups.users.list': 'usergroups:read',
  'users.info': 'users:read',
  'files.getUploadURLExternal': 'files:write',
  'files.completeUploadExternal': 'files:write',
};
// Scopes that come with a feature rather than a method: the /okome command, and posting in the
// incident channel without being invited to it.
const FEATURE_SCOPES = ['commands', 'chat:write.public'];

function webApiMethodsUsed(): string[] {
  const files = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.ts'),
  );
  const methods = new Set<string>();
  for (const file of files) {
    const text = readFileSync(join(root, 'src', file), 'utf8');
    for (const m of text.matchAll(
      /\bclient\.((?:auth|chat|users|usergroups|conversations|views|reactions|team|bots|apps|files)(?:\.[a-zA-Z]+)+)\(/g,
    ))
      methods.add(m[1] ?? '');
    for (const m of text.matchAll(/apiCall\(\s*'([a-zA-Z.]+)'/g)) methods.add(m[1] ?? '');
  }
  return [...methods].sort();
}

describe('manifest.yml matches the code', () => {
  it('requests exactly the bot scopes of the Web API methods src/ calls (plus commands, chat:write.public)', () => {
    const used = webApiMethodsUsed();
    expect(used).toContain('chat.postMessage');
    expect(used.filter((m) => !Object.hasOwn(METHOD_SCOPES, m))).toEqual([]);
    const needed = new Set([...FEATURE_SCOPES, ...used.flatMap((m) => METHOD_SCOPES[m] ?? [])]);
    const m = parse(readFileSync(join(root, 'manifest.yml'), 'utf8'));
    expect([...m.oauth_config.scopes.bot].sort()).toEqual([...needed].sort());
  });

  it('the usage hint names every command /okome parses', () => {
    const m = parse(readFileSync(join(root, 'manifest.yml'), 'utf8'));
    const hint: string = m.features.slash_commands[0].usage_hint;
    const kinds = [...readFileSync(join(root, 'src/domain/command.ts'), 'utf8').matchAll(/kind: '([a-z]+)'/g)]
      .map((k) => k[1] ?? '')
      .filter((k) => k !== 'invalid');
    expect(kinds).toEqual(expect.arrayContaining(['status', 'resolve', 'timeline']));
    for (const kind of new Set(kinds)) expect(hint).toMatch(new RegExp(`\\b${kind}\\b`));
    // Slack cuts a usage hint beyond 1,000 characters; a readable one is far shorter.
    expect(hint.length).toBeLessThanOrEqual(100);
  });
});
