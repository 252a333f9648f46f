import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { parseConfig } from '../../src/config/load-config.js';
import { buildBatchScript, commandWords } from '../../src/diagnostics/batch-protocol.js';
import {
  DEFAULT_BINARY_PATHS,
  generateNodeSudoers,
  generateSudoers,
  nodeSudoCommands,
  sudoEntry,
} from '../../src/remediation/sudoers.js';
import { fixtureConfig } from '../unit/remediation-fixtures.js';

const run = promisify(execFile);
const VISUDO = '/usr/sbin/visudo';
const dir = mkdtempSync(join(tmpdir(), 'okome-visudo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `visudo -cf FILE`: the exit status and what it said. */
async function visudo(text: string): Promise<{ ok: boolean; output: string }> {
  const file = join(dir, `sudoers-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text, { mode: 0o440 });
  try {
    const { stdout, stderr } = await run(VISUDO, ['-c', '-f', file]);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('generated sudoers passes visudo -cf', () => {
  it('the fixture catalogue: every node, and each node alone', async () => {
    const config = fixtureConfig();
    expect(await visudo(generateSudoers(config))).toMatchObject({
      ok: true,
      output: expect.stringMatching(/parsed OK/),
    });
    for (const node of ['pi-a', 'pi-b']) {
      expect((await visudo(generateNodeSudoers(config, node))).ok).toBe(true);
    }
  });

  it('config/okome.example.yml', async () => {
    const file = join(import.meta.dirname, '../../config/okome.example.yml');
    const config = parseConfig(readFileSync(file, 'utf8'), file);
    expect(await visudo(generateSudoers(config))).toMatchObject({ ok: true });
  });

  it('commands with , : = and with no arguments, escaped', async () => {
    const config = fixtureConfig((c) => {
      c.commands = {
        firewallFlush: 'sudo iptables -D INPUT -s 10.0.0.1,10.0.0.2 -m comment --comment a:b=c',
        chaosFlagRemove: 'sudo /usr/local/sbin/okome-chaos-off',
        firewallRules: 'sudo iptables -F, /bin/sh',
      };
    });
    const text = generateSudoers(config);
    expect(text).toContain('/usr/local/sbin/okome-chaos-off ""');
    expect(text).toContain('10.0.0.1\\,10.0.0.2');
    expect(await visudo(text)).toMatchObject({ ok: true });
  });

  it('the check itself catches a broken file (so the tests above mean something)', async () => {
    const broken = generateSudoers(fixtureConfig()).replace(
      '/usr/sbin/iptables -F',
      '/usr/sbin/iptables -F:',
    );
    expect(await visudo(broken)).toMatchObject({ ok: false, output: expect.stringMatching(/syntax error/) });
  });
});

describe('batched diagnostics need no new sudoers entry', () => {
  /** `okome sudoers` in-process for the example config with `diagnostics.batchSsh` set. */
  async function sudoersWith(batchSsh: boolean): Promise<string> {
    const example = readFileSync(join(import.meta.dirname, '../../config/okome.example.yml'), 'utf8');
    const text = example.replace(/^ {2}batchSsh: true$/m, `  batchSsh: ${batchSsh}`);
    expect(text).toContain(`batchSsh: ${batchSsh}`);
    // One path for both: the header names the config file.
    const file = join(dir, 'okome.yml');
    writeFileSync(file, text);
    const out: string[] = [];
    const code = await runCli(['sudoers', '--config', file], {
      env: {},
      cwd: dir,
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: () => undefined },
    });
    expect(code).toBe(0);
    return out.join('');
  }

  it('`okome sudoers` is byte-identical with batching on and off, and passes visudo -cf', async () => {
    const on = await sudoersWith(true);
    expect(on).toBe(await sudoersWith(false));
    expect(await visudo(on)).toMatchObject({ ok: true });
  });

  it('each sudo job of the batch script has exactly the argv of its sudoers entry (no `sudo timeout`)', () => {
    const config = fixtureConfig();
    for (const node of config.nodes) {
      const diagnostics = nodeSudoCommands(config, node.name).filter((c) =>
        c.source.startsWith('diagnostics'),
      );
      expect(diagnostics.length).toBeGreaterThan(0);
      for (const entry of diagnostics) {
        const words = commandWords(entry.configured);
        // Run as its own program (no shell), under its group's `timeout`: sudo is given
        // exactly these words, as sudoers spells them.
        expect(words).toMatch(/^sudo /);
        const script = buildBatchScript([{ command: entry.configured, timeoutMs: 3700 }], 'okome0', 4096);
        expect(script).toContain(`{ timeout 3.7 sh -s "$F" <<'okome0'\n`);
        expect(script).toContain(`\nj 0 ${words} &\n`);
        expect(script).not.toMatch(/sudo\s+timeout/);
        const batched = sudoEntry(words, 'diagnostics', node.name, DEFAULT_BINARY_PATHS);
        expect(batched.argv).toEqual(entry.argv);
      }
    }
  });
});
