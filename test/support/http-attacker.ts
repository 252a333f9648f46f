import { connect, type Socket } from 'node:net';

/**
 * A LAN attacker at the socket level: raw HTTP/1.1 bytes, written as the attack needs (all at
 * once, trickled, stalled), and what the server did about it: its status line, if any, and when
 * the connection was closed.
 */
export interface AttackOutcome {
  /** The status of the server's answer; undefined when it closed without one. */
  readonly status: number | undefined;
  /** From connect to close. */
  readonly closedAfterMs: number;
  /** True when the server never closed and the test gave up (a failure to report). */
  readonly abandoned: boolean;
}

export interface AttackPlan {
  readonly port: number;
  /** The attacker's own address (a LAN host): 127.0.0.x, apart from the prober's 127.0.0.1. */
  readonly from: string;
  /** Called once connected; writes what the attack sends (and may keep writing on a timer). */
  readonly send: (socket: Socket) => void;
  /** The test closes the connection itself after this long: an attacker the server never cut. */
  readonly giveUpMs: number;
}

export function attack(plan: AttackPlan): Promise<AttackOutcome> {
  const started = performance.now();
  const socket = connect({ port: plan.port, host: '127.0.0.1', localAddress: plan.from });
  let head = '';
  let abandoned = false;
  socket.on('data', (d: Buffer) => {
    if (head.length < 32) head += d.toString('latin1');
  });
  // Resets and broken pipes are how a server cuts an attacker: an outcome, not a test error.
  socket.on('error', () => {});
  socket.once('connect', () => plan.send(socket));
  const giveUp = setTimeout(() => {
    abandoned = true;
    socket.destroy();
  }, plan.giveUpMs);
  return new Promise((resolve) => {
    socket.once('close', () => {
      clearTimeout(giveUp);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      resolve({
        status: m?.[1] === undefined ? undefined : Number(m[1]),
        closedAfterMs: performance.now() - started,
        abandoned,
      });
    });
  });
}

/** Writes `text` one byte every `everyMs` until the socket closes. */
export function trickle(socket: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) {
      clearInterval(timer);
      return;
    }
    socket.write(text[i] ?? '');
    i += 1;
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/** A request head (request line and headers, blank line included). */
export function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** Peak and current resident set of a process, in MB (/proc/PID/status VmHWM and VmRSS). */
export function memoryOf(pid: number, read: (path: string) => string): { peakMb: number; rssMb: number } {
  const status = read(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 'NaN');
  return { peakMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
}
