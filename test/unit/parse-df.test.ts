import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mountAt, parseDf } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

describe('parseDf (df -P /)', () => {
  it("this machine's root filesystem", () => {
    expect(parseDf(fixture('df-host.txt'))).toEqual({
      kind: 'mounts',
      mounts: [
        {
          filesystem: '/dev/vda',
          sizeKb: 264212084,
          usedKb: 23489788,
          availKb: 82901124,
          usePercent: 23,
          mount: '/',
        },
      ],
      skippedLines: 0,
    });
  });

  it('several mounts, found by mount point', () => {
    const r = parseDf(fixture('df-all-host.txt'));
    if (r.kind !== 'mounts') throw new Error(r.reason);
    expect(r.mounts.map((m) => m.mount)).toEqual(['/', '/dev/shm', '/dev']);
    expect(mountAt(r, '/dev/shm')).toMatchObject({ filesystem: 'tmpfs', usedKb: 1052, usePercent: 1 });
    expect(mountAt(r, '/nowhere')).toBeUndefined();
  });

  it('a Pi SD card over 80 %, spaces in the mount point, a size-less pseudo filesystem', () => {
    const text = [
      'Filesystem     1024-blocks     Used Available Capacity Mounted on',
      '/dev/mmcblk0p2    29798592 23989004   4571272      84% /',
      '/dev/sda1          1000000   500000    500000      50% /media/pi/USB STICK',
      'none                     0        0         0        - /proc/sys/fs/binfmt_misc',
      '',
    ].join('\n');
    const r = parseDf(text);
    if (r.kind !== 'mounts') throw new Error(r.reason);
    expect(r.mounts.map((m) => [m.mount, m.usePercent])).toEqual([
      ['/', 84],
      ['/media/pi/USB STICK', 50],
      ['/proc/sys/fs/binfmt_misc', null],
    ]);
  });

  it('512-byte blocks (POSIXLY_CORRECT) are converted to kB', () => {
    const text =
      'Filesystem     512-blocks     Used Available Capacity Mounted on\n/dev/root 2000 1000 1000 50% /\n';
    expect(parseDf(text)).toMatchObject({ mounts: [{ sizeKb: 1000, usedKb: 500, availKb: 500 }] });
  });

  it('garbage, a header alone and a cut row are unknown', () => {
    expect(parseDf('')).toEqual({ kind: 'unknown', reason: 'no df -P header line in ""' });
    expect(parseDf("df: /: can't find mount point\n").kind).toBe('unknown');
    const header = fixture('df-host.txt').split('\n')[0] ?? '';
    expect(parseDf(header)).toEqual({
      kind: 'unknown',
      reason: 'df -P printed a header but no filesystem rows',
    });
    expect(parseDf(`${header}\n/dev/vda         264212084 23489788`).kind).toBe('unknown');
  });
});
