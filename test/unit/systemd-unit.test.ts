import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeWithTools } from '../support/required-tools.js';

const ROOT = join(import.meta.dirname, '../..');
const unit = readFileSync(join(ROOT, 'contrib/okome-bot.service'), 'utf8');

function setting(name: string): string[] {
  return [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1] ?? '');
}

it('contrib/okome-bot.service: a state directory, hardening, a restart policy and secrets from a file', () => {
  expect(setting('StateDirectory')).toEqual(['okome-bot']);
  expect(setting('NoNewPrivileges')).toEqual(['yes']);
  expect(setting('ProtectSystem')).toEqual(['strict']);
  expect(setting('ProtectHome')).toEqual(['yes']);
  expect(setting('PrivateTmp')).toEqual(['yes']);
  expect(setting('Restart')).toEqual(['on-failure']);
  // A configuration error (exit 2) is not retried in a loop.
  expect(setting('RestartPreventExitStatus')).toEqual(['2']);
  expect(setting('EnvironmentFile')).toEqual(['/etc/okome/okome-bot.env']);
  expect(setting('User')).toEqual(['okome-bot']);
  expect(setting('ExecStart')[0]).toMatch(/dist\/cli\/okome\.js serve$/);
  // The store the example names is the state directory's.
  expect(readFileSync(join(ROOT, 'config/okome.example.yml'), 'utf8')).toContain(
    '/var/lib/okome-bot/okome.db',
  );
});

describeWithTools(
  'contrib/okome-bot.service under systemd-analyze verify',
  ['systemd-analyze'],
  "Debian's systemd package",
  () => {
    it('verifies clean, with the install paths pointed at this checkout and its Node', () => {
      const dir = mkdtempSync(join(tmpdir(), 'okome-unit-'));
      try {
        const file = join(dir, 'okome-bot.service');
        // verify checks that ExecStart's program exists: the unit's /usr/local/bin/node and
        // /opt/okome-bot are where an installed bot has them; here they are this test's.
        writeFileSync(
          file,
          unit.replaceAll('/usr/local/bin/node', process.execPath).replaceAll('/opt/okome-bot', ROOT),
        );
        const run = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
        expect(`${run.stdout}${run.stderr}`).toBe('');
        expect(run.status).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
