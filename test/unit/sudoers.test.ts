import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sudoersCommand } from '../../src/cli/sudoers-command.js';
import { ConfigError, parseConfig } from '../../src/config/load-config.js';
import {
  aliasName,
  generateNodeSudoers,
  generateSudoers,
  nodeSudoCommands,
  sudoEntry,
} from '../../src/remediation/sudoers.js';
import { fixtureConfig, fixtureInput } from './remediation-fixtures.js';

const config = fixtureConfig();
const entries = (node: string, cfg = config) => nodeSudoCommands(cfg, node).map((c) => c.entry);

describe('sudoers: exactly the catalogue', () => {
  it('pi-a: its remediation commands, then the diagnostics that need root', () => {
    expect(entries('pi-a')).toEqual([
      '/usr/bin/systemctl restart nginx',
      '/usr/bin/systemctl restart keepalived',
      '/usr/bin/rm -f /etc/okome/CHAOS_ENABLE',
      '/usr/sbin/iptables -F',
      '/usr/sbin/iptables -t nat -F',
      '/usr/sbin/iptables -t mangle -F',
      '/usr/sbin/iptables -t raw -F',
      '/usr/sbin/iptables-save ""',
      '/usr/sbin/nginx -T',
    ]);
  });

  it('pi-b: restarts only what it runs; no restart-nginx (not a frontend) beyond disable-chaos', () => {
    expect(entries('pi-b')).toEqual([
      '/usr/bin/systemctl restart redis-server',
      '/usr/bin/systemctl restart keepalived',
      '/usr/bin/rm -f /etc/okome/CHAOS_ENABLE',
      '/usr/sbin/iptables -F',
      '/usr/sbin/iptables -t nat -F',
      '/usr/sbin/iptables -t mangle -F',
      '/usr/sbin/iptables -t raw -F',
      '/usr/bin/systemctl restart nginx',
      '/usr/sbin/iptables-save ""',
      '/usr/sbin/nginx -T',
    ]);
  });

  it('no wildcard anywhere, and FLUSHDB (a Redis command) needs no sudo', () => {
    const text = generateSudoers(config);
    expect(text).not.toMatch(/[*?[\]]/);
    expect(text).not.toMatch(/ALL\s*$/m);
    expect(text).not.toMatch(/FLUSHDB/i);
  });

  it('the node section: alias, !requiretty, NOPASSWD rule for the SSH user', () => {
    const text = generateNodeSudoers(config, 'pi-a');
    expect(text).toContain(
      [
        'Cmnd_Alias OKOME_PI_A = \\',
        '    /usr/bin/systemctl restart nginx, \\',
        '    /usr/bin/systemctl restart keepalived, \\',
        '    /usr/bin/rm -f /etc/okome/CHAOS_ENABLE, \\',
        '    /usr/sbin/iptables -F, \\',
        '    /usr/sbin/iptables -t nat -F, \\',
        '    /usr/sbin/iptables -t mangle -F, \\',
        '    /usr/sbin/iptables -t raw -F, \\',
        '    /usr/sbin/iptables-save "", \\',
        '    /usr/sbin/nginx -T',
        'Defaults:okome !requiretty',
        'okome ALL=(root) NOPASSWD: OKOME_PI_A',
      ].join('\n'),
    );
    expect(text).toMatch(/^# pi-a \(10\.86\.0\.20\): SSH user okome; install on pi-a only\.$/m);
  });

  it('generateSudoers: every node, or one with `node`', () => {
    expect(generateSudoers(config)).toMatch(/OKOME_PI_A[\s\S]*OKOME_PI_B/);
    const one = generateSudoers(config, { node: 'pi-b' });
    expect(one).toContain('OKOME_PI_B');
    expect(one).not.toContain('OKOME_PI_A');
    expect(() => generateSudoers(config, { node: 'pi-z' })).toThrow(
      expect.objectContaining({ code: 'OKOME_USAGE_INVALID', message: expect.stringMatching(/pi-a, pi-b/) }),
    );
  });

  it('a node with no sudo command gets no rule at all', () => {
    const cfg = fixtureConfig((c) => {
      c.actions = [];
      c.commands = { firewallRules: 'iptables -S', nginxConfig: 'nginx -T' };
    });
    const text = generateNodeSudoers(cfg, 'pi-a');
    expect(text).toMatch(/nothing to allow/);
    expect(text).not.toMatch(/NOPASSWD/);
  });

  it('alias names are valid sudoers aliases', () => {
    expect(aliasName('pi-a')).toBe('OKOME_PI_A');
    expect(aliasName('0node-9')).toBe('OKOME_0NODE_9');
  });
});

describe('sudoers: spelling and escaping', () => {
  const paths = { systemctl: '/usr/bin/systemctl', iptables: '/usr/sbin/iptables' };

  it('a command without arguments is written with "" so no argument is allowed', () => {
    expect(sudoEntry('sudo /usr/local/sbin/okome-chaos-off', 'x', 'pi-a', paths).entry).toBe(
      '/usr/local/sbin/okome-chaos-off ""',
    );
  });

  it('escapes , : = and keeps arguments exact', () => {
    const e = sudoEntry(
      'sudo iptables -D INPUT -s 10.0.0.1,10.0.0.2 -m comment --comment a:b=c',
      'x',
      'pi-a',
      paths,
    );
    expect(e.entry).toBe('/usr/sbin/iptables -D INPUT -s 10.0.0.1\\,10.0.0.2 -m comment --comment a\\:b\\=c');
    expect(e.argv).toEqual([
      '/usr/sbin/iptables',
      '-D',
      'INPUT',
      '-s',
      '10.0.0.1,10.0.0.2',
      '-m',
      'comment',
      '--comment',
      'a:b=c',
    ]);
  });

  it('collapses the shell word splitting exactly as the shell does (runs of spaces and tabs)', () => {
    expect(sudoEntry('sudo  systemctl\trestart   nginx', 'x', 'pi-a', paths).entry).toBe(
      '/usr/bin/systemctl restart nginx',
    );
  });

  it('uses the paths given', () => {
    const cfg = fixtureConfig();
    expect(nodeSudoCommands(cfg, 'pi-a', { paths: { systemctl: '/bin/systemctl' } })[0]?.entry).toBe(
      '/bin/systemctl restart nginx',
    );
  });

  const hostile: ReadonlyArray<readonly [string, RegExp]> = [
    ['sudo systemctl restart nginx; reboot', /shell syntax in "nginx;"/],
    ['sudo systemctl restart $(id)', /shell syntax/],
    ['sudo systemctl restart `id`', /shell syntax/],
    ['sudo systemctl restart "nginx"', /shell syntax/],
    ['sudo systemctl restart nginx*', /shell syntax/],
    ['sudo systemctl restart nginx && reboot', /shell syntax/],
    ['sudo systemctl restart nginx | tee /etc/sudoers', /shell syntax/],
    ['sudo systemctl restart nginx > /etc/sudoers', /shell syntax/],
    ['sudo systemctl restart ~root', /shell syntax/],
    ['sudo systemctl restart nginx\\', /shell syntax/],
    ['sudo systemctl restart nginx # ALL', /shell syntax/],
    ['sudo -u root systemctl restart nginx', /options or variables/],
    ['sudo LD_PRELOAD=/tmp/x.so systemctl restart nginx', /options or variables/],
    ['sudo reboot', /absolute path is unknown/],
    ['sudo ../bin/systemctl restart nginx', /absolute path is unknown/],
    ['sudo /usr/bin/../bin/sh -c id', /not a plain absolute path/],
  ];
  it.each(hostile)('refuses %j', (command, why) => {
    expect(() => sudoEntry(command, 'commands.serviceRestart', 'pi-a', paths)).toThrow(
      expect.objectContaining({
        code: 'OKOME_SUDOERS_UNSUPPORTED_COMMAND',
        message: expect.stringMatching(why),
      }),
    );
  });

  it('a comma in a configured command stays an argument: it cannot add a second command', () => {
    const cfg = fixtureConfig((c) => {
      c.commands = { firewallFlush: 'sudo iptables -F, /bin/sh' };
    });
    expect(entries('pi-a', cfg)).toContain('/usr/sbin/iptables -F\\, /bin/sh');
    expect(entries('pi-a', cfg)).not.toContain('/bin/sh');
  });

  it('`sudo A && sudo B`: one exact entry per part; `&&` glued to a word is still refused', () => {
    const cfg = fixtureConfig((c) => {
      c.commands = { firewallFlush: 'sudo iptables -F && sudo iptables -t nat -F && echo flushed' };
    });
    const flush = entries('pi-a', cfg).filter((e) => e.includes('iptables') && e.endsWith('-F'));
    expect(flush).toEqual(['/usr/sbin/iptables -F', '/usr/sbin/iptables -t nat -F']);
    expect(entries('pi-a', cfg).join('\n')).not.toMatch(/&&|echo/);
    const glued = fixtureConfig((c) => {
      c.commands = { firewallFlush: 'sudo iptables -F &&sudo sh' };
    });
    expect(() => generateSudoers(glued)).toThrow(
      expect.objectContaining({ code: 'OKOME_SUDOERS_UNSUPPORTED_COMMAND' }),
    );
  });

  it('a hostile configured command fails generation instead of widening the rule', () => {
    const cfg = fixtureConfig((c) => {
      c.commands = { firewallFlush: 'sudo iptables -F; sudo sh' };
    });
    expect(() => generateSudoers(cfg)).toThrow(
      expect.objectContaining({ code: 'OKOME_SUDOERS_UNSUPPORTED_COMMAND' }),
    );
  });

  it('configuration validation already refuses a command spread over lines', () => {
    expect(() =>
      fixtureConfig((c) => {
        c.commands = { firewallFlush: 'sudo iptables -F\nokome ALL=(ALL) NOPASSWD: ALL' };
      }),
    ).toThrow(ConfigError);
  });

  it('a comment cannot be continued onto the next line by a trailing backslash', () => {
    const text = generateSudoers({ ...config, file: '/etc/okome/evil\\' });
    expect(text).toMatch(/^# okome-bot sudoers, generated by `okome sudoers` from \/etc\/okome\/evil\?\.$/m);
  });
});

describe('okome sudoers (command body)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'okome-sudoers-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'okome.yml');
  writeFileSync(file, stringify(fixtureInput()));

  function run(configFlag: string | undefined, node: string | undefined, env: NodeJS.ProcessEnv = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const code = sudoersCommand(configFlag, node, {
      env,
      cwd: dir,
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
    });
    return { code, stdout: out.join(''), stderr: err.join('') };
  }

  it('prints every node, or one', () => {
    const all = run('okome.yml', undefined);
    expect(all).toMatchObject({ code: 0, stderr: '' });
    expect(all.stdout).toMatch(/OKOME_PI_A[\s\S]*OKOME_PI_B/);
    const one = run(undefined, 'pi-a', { OKOME_CONFIG: file });
    expect(one.code).toBe(0);
    expect(one.stdout).not.toContain('OKOME_PI_B');
  });

  it('exit 2 with a reason for an unknown node, a missing or invalid configuration', () => {
    expect(run(file, 'pi-z')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/OKOME_USAGE_INVALID: no node "pi-z"/),
    });
    expect(run(undefined, undefined)).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/OKOME_CONFIG_NOT_FOUND/),
    });
    const bad = join(dir, 'bad.yml');
    writeFileSync(bad, 'nodes: []\n');
    expect(run(bad, undefined)).toMatchObject({ code: 2, stderr: expect.stringMatching(/problem\(s\)/) });
  });
});

describe('sudoers: the drill actions of the example catalogue', () => {
  const example = parseConfig(
    readFileSync(join(import.meta.dirname, '../../config/okome.example.yml'), 'utf8'),
    'okome.example.yml',
  );
  const drillEntries = (node: string) =>
    nodeSudoCommands(example, node)
      .filter((c) => c.source.startsWith('drill-'))
      .map((c) => `${c.source}: ${c.entry}`);

  it('stop and start keepalived exactly, on both VIP holders; stop redis-server on the backend only', () => {
    expect(drillEntries('pi-a')).toEqual([
      'drill-stop-keepalived: /usr/bin/systemctl stop keepalived',
      'drill-start-keepalived: /usr/bin/systemctl start keepalived',
    ]);
    expect(drillEntries('pi-b')).toEqual([
      'drill-stop-keepalived: /usr/bin/systemctl stop keepalived',
      'drill-start-keepalived: /usr/bin/systemctl start keepalived',
      'drill-stop-redis: /usr/bin/systemctl stop redis-server',
    ]);
    // No stop or start of anything else: nginx is never stopped by a drill.
    const text = generateSudoers(example);
    expect(text.match(/\/usr\/bin\/systemctl (stop|start) [a-z-]+/g)?.sort()).toEqual([
      '/usr/bin/systemctl start keepalived',
      '/usr/bin/systemctl start keepalived',
      '/usr/bin/systemctl stop keepalived',
      '/usr/bin/systemctl stop keepalived',
      '/usr/bin/systemctl stop redis-server',
    ]);
  });
});
