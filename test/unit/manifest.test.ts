import { existsSync, readFileSync } from 'node:fs';
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
