import { describe, expect, it } from 'vitest';
import {
  type AddressChange,
  addressEvent,
  MONITOR_COMMAND,
  VipAddressMonitor,
} from '../../src/alerts/vip-address-monitor.js';
import type { ExecOptions, ExecResult } from '../../src/probes/ports.js';

/** A NodeShell port whose streams the test drives: each exec stays open until ended. */
class StreamShell {
  readonly opened: Array<{
    node: string;
    command: string;
    options: ExecOptions;
    end(result?: Partial<ExecResult>): void;
    fail(error: Error): void;
    write(text: string): void;
  }> = [];

  exec = (node: string, command: string, options: ExecOptions): Promise<ExecResult> =>
    new Promise((resolve, reject) => {
      const stream = {
        node,
        command,
        options,
        end: (result: Partial<ExecResult> = {}) =>
          resolve({
            exitCode: 0,
            signal: undefined,
            stdout: '',
            stderr: '',
            durationMs: 1,
            truncated: false,
            ...result,
          }),
        fail: (error: Error) => reject(error),
        write: (text: string) => options.onStdout?.(Buffer.from(text)),
      };
      options.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      this.opened.push(stream);
    });

  latest(node: string) {
    const s = this.opened.filter((o) => o.node === node).at(-1);
    if (s === undefined) throw new Error(`no stream on ${node}`);
    return s;
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup() {
  const shell = new StreamShell();
  const changes: string[] = [];
  const timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  const monitor = new VipAddressMonitor({
    shell,
    nodes: ['pi-a', 'pi-b'],
    address: '10.9.0.100',
    onChange: (node: string, change: AddressChange) => changes.push(`${node} ${change}`),
    setTimer: (fn, ms) => {
      const t = { fn, ms, cancelled: false };
      timers.push(t);
      return () => {
        t.cancelled = true;
      };
    },
  });
  const fire = () => {
    for (const t of timers.splice(0)) if (!t.cancelled) t.fn();
  };
  return { shell, changes, timers, monitor, fire };
}

describe('addressEvent', () => {
  it('names additions and deletions of the VIP only, in the forms `ip -o monitor` prints', () => {
    const vip = '10.9.0.100';
    expect(
      addressEvent(
        '2: eth0    inet 10.9.0.100/24 scope global secondary eth0\\       valid_lft forever',
        vip,
      ),
    ).toBe('added');
    expect(addressEvent('Deleted 2: eth0    inet 10.9.0.100/24 scope global secondary eth0', vip)).toBe(
      'deleted',
    );
    expect(addressEvent('[ADDR]Deleted 2: eth0    inet 10.9.0.100/32 scope global eth0', vip)).toBe(
      'deleted',
    );
    // Other addresses, and one the VIP is a prefix of, are not the VIP.
    expect(addressEvent('2: eth0    inet 10.9.0.10/24 scope global eth0', vip)).toBeUndefined();
    expect(addressEvent('2: eth0    inet 10.9.0.1000/24 scope global eth0', vip)).toBeUndefined();
    expect(addressEvent('2: eth0    inet 10.9.0.101/24 scope global eth0', vip)).toBeUndefined();
    expect(addressEvent('2: eth0    inet 10x9x0x100/24 scope global eth0', vip)).toBeUndefined();
  });
});

describe('VipAddressMonitor', () => {
  it('opens one stream per node with the fixed command; live once every stream said it is ready', async () => {
    const { shell, monitor } = setup();
    monitor.start();
    expect(shell.opened.map((o) => `${o.node}: ${o.command}`)).toEqual([
      `pi-a: ${MONITOR_COMMAND}`,
      `pi-b: ${MONITOR_COMMAND}`,
    ]);
    expect(monitor.live()).toBe(false);
    shell.latest('pi-a').write('okome-vip-monitor-ready\n');
    expect(monitor.live()).toBe(false);
    expect(monitor.liveNodes()).toEqual(['pi-a']);
    shell.latest('pi-b').write('okome-vip-monitor-ready\n');
    expect(monitor.live()).toBe(true);
    monitor.stop();
  });

  it('reports VIP lines as they arrive, whole lines only, however the chunks are cut', async () => {
    const { shell, changes, monitor } = setup();
    monitor.start();
    const a = shell.latest('pi-a');
    // Lines before the ready mark are not news (nothing is monitored yet).
    a.write('2: eth0    inet 10.9.0.100/24 scope global eth0\nokome-vip-mon');
    a.write('itor-ready\nDeleted 2: eth0    inet 10.9');
    expect(changes).toEqual([]);
    a.write('.0.100/24 scope global secondary eth0\n3: eth1    inet 10.9.0.7/24 scope global eth1\n');
    a.write('2: eth0    inet 10.9.0.100/24 scope global secondary eth0\n');
    expect(changes).toEqual(['pi-a deleted', 'pi-a added']);
    monitor.stop();
  });

  it('a stream that was up and ended is news; one that never started is not; both are opened again later', async () => {
    const { shell, changes, monitor, timers, fire } = setup();
    monitor.start();
    shell.latest('pi-a').write('okome-vip-monitor-ready\n');
    shell.latest('pi-a').fail(new Error('ssh pi-a: connection lost while the command was running'));
    shell.latest('pi-b').end({ exitCode: 127, stderr: 'sh: ip: not found' });
    await settle();
    expect(changes).toEqual(['pi-a stream-ended']);
    expect(monitor.live()).toBe(false);
    expect(timers.map((t) => t.ms)).toEqual([5000, 5000]);
    fire();
    expect(shell.opened.map((o) => o.node)).toEqual(['pi-a', 'pi-b', 'pi-a', 'pi-b']);
    monitor.stop();
  });

  it('stop() ends every stream and retry, and reports nothing after', async () => {
    const { shell, changes, monitor, timers } = setup();
    monitor.start();
    shell.latest('pi-a').write('okome-vip-monitor-ready\n');
    shell.latest('pi-b').end({ exitCode: 1 });
    await settle();
    monitor.stop();
    await settle();
    // pi-a's open stream is cut; pi-b's had ended and its retry is cancelled.
    expect(shell.latest('pi-a').options.signal?.aborted).toBe(true);
    expect(timers.every((t) => t.cancelled)).toBe(true);
    expect(changes).toEqual([]);
    expect(monitor.live()).toBe(false);
  });
});
