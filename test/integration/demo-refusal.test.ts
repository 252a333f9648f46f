import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandHints } from '../../demo/command-hints.js';
import { USAGE_LINES } from '../../src/slack/render/incident-message.js';

// `npm run demo` before it touches anything: without root it says why and what to run, exit 2;
// a bad option is a usage message, exit 2. As root the test runs the demo as nobody.

const ROOT = join(import.meta.dirname, '../..');
const NOBODY = 65_534;

function demo(args: readonly string[]) {
  const asRoot = process.getuid?.() === 0;
  return spawnSync(process.execPath, ['--import', 'tsx', 'demo/demo.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    // tsx keeps its cache under the temp dir, per user: nobody gets its own.
    env: { ...process.env, HOME: '/nonexistent' },
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
}

describe('npm run demo refusals', () => {
  it('without root: why, what to run, exit 2, and nothing built or started', () => {
    const result = demo([]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/needs root/);
    expect(result.stderr).toContain('sudo npm run demo');
    expect(result.stderr).not.toMatch(/building|lab up/);
    expect(result.stdout).toBe('');
  });

  it('an unknown option or a bad port: usage, exit 2', () => {
    expect(demo(['--bogus'])).toMatchObject({
      status: 2,
      stderr: expect.stringMatching(/Usage: npm run demo/),
    });
    expect(demo(['--port', '99999'])).toMatchObject({
      status: 2,
      stderr: expect.stringMatching(/--port takes/),
    });
  });

  it('suggests every /okome command the bot’s help lists, placeholders unescaped', () => {
    const hints = commandHints(USAGE_LINES);
    expect(hints).toHaveLength(USAGE_LINES.length);
    expect(hints.map((h) => h.usage)).toEqual(
      expect.arrayContaining(['/okome status', '/okome help', '/okome resolve [incident]']),
    );
    expect(hints.find((h) => h.usage.startsWith('/okome check'))?.usage).toBe(
      '/okome check <check-id | node | incident-number>',
    );
    expect(hints.every((h) => h.help !== '' && !h.help.includes('&lt;'))).toBe(true);
  });
});
