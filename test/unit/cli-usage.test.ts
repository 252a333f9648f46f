import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMAND_HELP, COMMAND_NAMES } from '../../src/cli/help.js';
import { runCli, USAGE } from '../../src/cli/run-cli.js';
import { checkIds } from '../../src/domain/check-result.js';
import { closestMatch, editDistance } from '../../src/domain/suggest.js';

/** The CLI as a new operator guesses at it: help per command, suggestions for typos. */

async function okome(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env: {},
    cwd: '/nonexistent',
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('okome help per subcommand', () => {
  it.each(['serve', 'status', 'validate', 'check', 'sudoers', 'audit', 'config', 'hostkeys', 'doctor'])(
    'okome %s --help and okome help %s print that command’s own text, not the usage',
    async (command) => {
      const viaFlag = await okome(command, '--help');
      const viaHelp = await okome('help', command);
      expect(viaFlag.code).toBe(0);
      expect(viaFlag.stdout).toMatch(new RegExp(`^Usage: okome ${command}\\b`));
      expect(viaFlag.stdout).not.toBe(USAGE);
      expect(viaHelp.stdout).toBe(viaFlag.stdout);
    },
  );

  it('okome check --help lists the check targets: every check id, nodes, incident numbers', async () => {
    const run = await okome('check', '--help');
    for (const id of checkIds) expect(run.stdout).toContain(id);
    expect(run.stdout).toMatch(/a node:/);
    expect(run.stdout).toMatch(/1, 2, 3, 4, 5, 5b, 6, 7/);
  });

  it('okome check with no target says what a target is (exit 2), not "unknown command"', async () => {
    const run = await okome('check');
    expect(run.code).toBe(2);
    expect(run.stderr).not.toMatch(/unknown command/);
    expect(run.stderr).toMatch(/^okome check needs a TARGET/);
    expect(run.stderr).toContain(COMMAND_HELP.check);
  });

  it('the usage names hostkeys and doctor and exit code 5; their help says what each exit code means', () => {
    expect(USAGE).toMatch(/^ {2}okome hostkeys \[--node NAME\] .*never edits the config/m);
    expect(USAGE).toMatch(/^ {2}okome doctor /m);
    expect(USAGE).toMatch(/5 a host key differs from its pin \(okome hostkeys\)/);
    expect(COMMAND_HELP.hostkeys).toMatch(/5 a host key differs from its pin/);
    expect(COMMAND_HELP.hostkeys).toMatch(/never edits the configuration/);
    expect(COMMAND_HELP.doctor).toMatch(
      /Exit codes: 0 every check passed, 1 some did not, 2 the configuration cannot be read/,
    );
  });

  it("README's terminal commands table names every command, with its options", () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('### In the terminal'), readme.indexOf('### HTTP endpoints'));
    for (const command of COMMAND_NAMES.filter((c) => c !== 'help' && c !== 'check'))
      expect(table).toContain(`| \`okome ${command}`);
    expect(table).toContain('`okome hostkeys [--node NAME]`');
  });

  it('every command has help, and the usage and serve help document exit code 4', async () => {
    expect(USAGE).toMatch(/4 Slack could not be reached at start-up/);
    expect(COMMAND_HELP.serve).toMatch(/4 Slack could not be reached at start-up/);
  });
});

describe('typos get a suggestion', () => {
  it.each([
    [['stauts'], 'unknown command "stauts". Did you mean "status"?'],
    [['serv'], 'Did you mean "serve"?'],
    [['valdiate'], 'Did you mean "validate"?'],
    [['help', 'chek'], 'Did you mean "check"?'],
    [['config', 'chekc'], 'unknown subcommand "chekc". Did you mean "check"?'],
    [['status', '--jsn'], 'unknown option "--jsn". Did you mean "--json"?'],
    [['status', '--cofnig', 'x'], 'Did you mean "--config"?'],
    [['hostkeys', '--nod', 'pi-a'], 'Did you mean "--node"?'],
    [['hostkey'], 'Did you mean "hostkeys"?'],
  ])('okome %j → %s (exit 2)', async (argv, expected) => {
    const run = await okome(...argv);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(expected);
  });

  it('no suggestion for something unlike any command', async () => {
    const run = await okome('frobnicate');
    expect(run.stderr).toBe('okome: unknown command "frobnicate".\nRun okome --help for every command.\n');
  });

  it('edit distance counts a swapped pair as one edit; far words are not suggested', () => {
    expect(editDistance('stauts', 'status')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(closestMatch('diskPercentage', ['diskPercent', 'memoryPercent'])).toBe('diskPercent');
    expect(closestMatch('xyz', ['status', 'serve'])).toBeUndefined();
  });
});
