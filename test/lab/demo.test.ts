import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ApiMessage, DemoState, PersonaId } from '../../demo/web/api-types.js';
import { attachLab, REPO_ROOT } from '../support/lab/lab.js';
import { listLabNamespaces } from '../support/lab/network.js';
import { downLab, isAlive, labProcesses } from '../support/lab/teardown.js';
import { RUN_DIR } from '../support/lab/topology.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { waitFor } from '../support/slack-emulator/wait-for.js';

/**
 * `npm run demo` as a user runs it, driven through its HTTP API as the page does: the built bot
 * in the lab, the emulator's Slack, real faults, real clicks. Browser-level checks of the same
 * flow (rendering, confirm dialogs) belong to the page's own browser test.
 */

interface Demo {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stderr: () => string;
}

/** Starts the demo (build included) and resolves with the URL it prints. */
function startDemo(): Promise<Demo> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/demo.ts'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /^okome demo: (http:\/\/127\.0\.0\.1:\d+)\//m.exec(out)?.[1];
      if (url !== undefined) resolve({ child, url, stderr: () => err });
    });
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}) before its URL:\n${err}`)));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

let demo: Demo;
let crashedBotPids: number[] = [];

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(`${demo.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function state(): Promise<DemoState> {
  return (await (await fetch(`${demo.url}/api/state`)).json()) as DemoState;
}

async function command(persona: PersonaId, text: string): Promise<void> {
  const r = await post('/api/command', { persona, text });
  expect(r, JSON.stringify(r.body)).toMatchObject({ status: 200, body: { ok: true } });
}

/** The newest channel root whose text starts with `prefix`, after `since` (a ts). */
function root(s: DemoState, prefix: string, since = '0') {
  return s.messages.filter((t) => t.root.ts > since && t.root.text.startsWith(prefix)).at(-1);
}

function newestTs(s: DemoState): string {
  return s.messages.at(-1)?.root.ts ?? '0';
}

/** The approve button of a card: what the page sends when it is clicked (and confirmed). */
function approveButton(card: ApiMessage) {
  for (const block of card.blocks ?? []) {
    const b = block as { type?: string; block_id?: string; elements?: Array<Record<string, unknown>> };
    if (b.type !== 'actions') continue;
    const button = b.elements?.find((e) => String(e.action_id).startsWith('okome:approve:'));
    if (button !== undefined)
      return {
        channel: card.channel,
        ts: card.ts,
        actionId: String(button.action_id),
        value: String(button.value),
        ...(b.block_id === undefined ? {} : { blockId: b.block_id }),
        confirm: button.confirm,
      };
  }
  throw new Error(`card "${card.text}" has no Approve button`);
}

describeLab('npm run demo', () => {
  beforeAll(async () => {
    // A demo that crashed (SIGKILL: no teardown) leaves its lab and bot behind…
    const crashed = await startDemo();
    crashedBotPids = await labProcesses();
    crashed.child.kill('SIGKILL');
    await exited(crashed.child);
    expect((await listLabNamespaces()).length).toBeGreaterThan(0);
    // …and the next start removes them before building its own.
    demo = await startDemo();
    expect(demo.stderr()).toMatch(/removed what a crashed demo or lab left \(5 namespaces/);
  }, 240_000);

  afterAll(async () => {
    if (demo !== undefined && demo.child.exitCode === null) demo.child.kill('SIGKILL');
    await downLab();
  });

  it('every crashed run’s process is gone', async () => {
    const alive = [];
    for (const pid of crashedBotPids) if (await isAlive(pid)) alive.push(pid);
    expect(alive).toEqual([]);
  });

  it('serves the page, its bundled script, and the state with the four personas', async () => {
    const page = await fetch(`${demo.url}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<script type="module" src="/app.js">');
    const js = await fetch(`${demo.url}/app.js`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain('/api/events');
    const s = await state();
    expect(s.channel).toBe('C0INCIDENT');
    expect(s.personas.map((p) => [p.id, p.userId])).toEqual([
      ['requester', 'U0REQUEST'],
      ['approver1', 'U0APPROVER1'],
      ['approver2', 'U0OPSGROUP'],
      ['stranger', 'U0STRANGER'],
    ]);
    expect(s.commands.map((c) => c.usage)).toContain('/okome status');
    expect(s.faults.find((f) => f.id === 'service-stop:pi-b:redis-server')).toMatchObject({ applied: false });
  });

  it('/okome status → "healthy", pushed over SSE as it is posted', async () => {
    const events = await fetch(`${demo.url}/api/events`);
    const reader = events.body?.getReader();
    if (reader === undefined) throw new Error('no event stream');
    let text = '';
    const read = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
        if (/event: message\ndata: .*OKOME status: healthy/.test(text)) return;
      }
    })();
    try {
      await command('requester', '/okome status');
      const healthy = await waitFor(
        async () => root(await state(), 'OKOME status: healthy'),
        30_000,
        'healthy',
      ).catch(async (error: unknown) => {
        // What the channel said instead, and the demo's own output.
        const said = (await state()).messages.slice(-4).map((m) => m.root.text.slice(0, 300));
        throw new Error(
          `${String(error)}\nchannel: ${said.join('\n')}\ndemo stderr: ${demo.stderr().slice(-3000)}`,
        );
      });
      expect(healthy.root.text).toMatch(/^OKOME status: healthy/);
      await Promise.race([
        read,
        new Promise((_, no) => setTimeout(() => no(new Error('no SSE event')), 10_000)),
      ]);
      expect(text.startsWith('event: state\n')).toBe(true);
    } finally {
      await reader.cancel();
    }
  });

  it('redis stopped on pi-b → incident 2; the no-rights click is refused; approver 1 → exit 0, verified, redis active', async () => {
    const lab = await attachLab();
    const since = newestTs(await state());
    const applied = await post('/api/fault', {
      name: 'service-stop',
      node: 'pi-b',
      service: 'redis-server',
      action: 'apply',
    });
    expect(applied).toMatchObject({ status: 200, body: { fault: 'service-stop:pi-b:redis-server' } });
    expect(await lab.unitState('pi-b', 'redis-server')).toBe('inactive');
    expect((await state()).faults.find((f) => f.id === 'service-stop:pi-b:redis-server')?.applied).toBe(true);

    await command('requester', 'status');
    const incident = await waitFor(
      async () => {
        const thread = root(await state(), 'Incident 2', since);
        return thread?.replies.find(
          (r) => r.text.startsWith('Restart redis-server on pi-b') && r.text.endsWith(': pending'),
        )
          ? thread
          : undefined;
      },
      30_000,
      'incident 2 with its restart card',
    );
    const card = incident.replies.find((r) => r.text.startsWith('Restart redis-server on pi-b'));
    if (card === undefined) throw new Error('no card');
    const { confirm, ...button } = approveButton(card);
    expect(confirm).toBeDefined(); // the page asks before it sends the click

    // Someone with no rights: told why, only them; nothing runs.
    expect(await post('/api/click', { persona: 'stranger', ...button })).toMatchObject({ status: 200 });
    const refusal = await waitFor(
      async () => (await state()).ephemerals.stranger.at(-1),
      15_000,
      'the refusal shown to the stranger',
    );
    expect(refusal.text).toMatch(/may not approve/);
    expect(await lab.unitState('pi-b', 'redis-server')).toBe('inactive');
    const after = await state();
    expect(
      root(after, 'Incident 2', since)
        ?.replies.find((r) => r.ts === card.ts)
        ?.text.endsWith(': pending'),
    ).toBe(true);

    expect(await post('/api/click', { persona: 'approver1', ...button })).toMatchObject({ status: 200 });
    const report = await waitFor(
      async () => {
        const thread = root(await state(), 'Incident 2', since);
        const blocks = JSON.stringify(thread?.replies.map((r) => r.blocks) ?? []);
        return blocks.includes('*Verification*') ? blocks : undefined;
      },
      60_000,
      'the execution report in the thread',
    );
    expect(report).toContain('sudo systemctl restart redis-server');
    expect(report).toContain('exit 0');
    expect(report).toContain(':white_check_mark: *Verification*');
    expect(await lab.unitState('pi-b', 'redis-server')).toBe('active');
    // The panel follows the lab: the fault the bot fixed is no longer shown applied.
    await waitFor(
      async () =>
        (await state()).faults.find((f) => f.id === 'service-stop:pi-b:redis-server')?.applied === false,
      15_000,
      'the fault cleared in the panel',
    );
  });

  it('keepalived stopped on pi-a from the panel → the failover notice, with no command typed', async () => {
    const since = newestTs(await state());
    const fault = { name: 'service-stop', node: 'pi-a', service: 'keepalived' };
    expect(await post('/api/fault', { ...fault, action: 'apply' })).toMatchObject({ status: 200 });
    try {
      const prefix = ':arrows_counterclockwise: VIP moved from *pi-a* to *pi-b*';
      const notice = await waitFor(
        async () => root(await state(), prefix, since),
        20_000,
        'the failover notice',
      );
      // Whichever observer saw the move first names itself: keepalived's notify hook or the bot's
      // own VIP watcher (on a loaded machine the watcher's poll can beat the hook). One notice.
      expect(notice.root.text).toMatch(/\((keepalived|VIP watcher)\)/);
      await waitFor(
        async () => (await state()).lab?.vipHolders.join() === 'pi-b',
        10_000,
        'the panel shows pi-b',
      );
      const notices = (await state()).messages.filter(
        (t) => t.root.ts > since && t.root.text.startsWith(prefix),
      );
      expect(notices).toHaveLength(1);
    } finally {
      // The revert waits until pi-a holds the VIP again; done even when a check above failed, so
      // the tests after this one start from a healthy lab.
      expect(await post('/api/fault', { ...fault, action: 'revert' })).toMatchObject({ status: 200 });
    }
    expect((await state()).lab?.vipHolders).toEqual(['pi-a']);
  });

  it('the Alert button sends a RedisDown alert through the bot’s real webhook', async () => {
    const fault = { name: 'service-stop', node: 'pi-b', service: 'redis-server' };
    expect(await post('/api/fault', { ...fault, action: 'apply' })).toMatchObject({ status: 200 });
    expect(await post('/api/alert', {})).toMatchObject({ status: 200, body: { botStatus: 202 } });
    await waitFor(
      async () =>
        (await state()).messages.some((t) =>
          [t.root, ...t.replies].some((m) => m.text.includes('RedisDown') && m.text.includes('pi-b')),
        ),
      20_000,
      'the alert in the channel',
    );
    expect(await post('/api/fault', { ...fault, action: 'revert' })).toMatchObject({ status: 200 });
    expect(await post('/api/alert', { status: 'resolved' })).toMatchObject({
      status: 200,
      body: { botStatus: 202 },
    });
  });

  it('the API refuses what the page never sends: wrong shapes, unknown faults, other hosts, forms', async () => {
    expect((await post('/api/command', { persona: 'boss', text: 'status' })).status).toBe(400);
    expect((await post('/api/command', { persona: 'requester', text: '/deploy prod' })).status).toBe(400);
    expect((await post('/api/fault', { name: 'rm -rf /', action: 'apply' })).status).toBe(400);
    expect(
      (await post('/api/fault', { name: 'service-stop', service: 'sshd; id', action: 'apply' })).status,
    ).toBe(400);
    expect(
      (await post('/api/fault', { name: 'orchestrator-down', node: 'pi-a', action: 'apply' })).status,
    ).toBe(400);
    expect(
      (await post('/api/click', { persona: 'approver1', channel: 'C0OTHER', ts: '1.000001', actionId: 'x' }))
        .status,
    ).toBe(404);
    expect((await post('/api/command', '{not json')).status).toBe(400);
    expect(
      (await post('/api/command', { persona: 'requester', text: 'status' }, { 'content-type': 'text/plain' }))
        .status,
    ).toBe(415);
    // DNS rebinding: another site's name resolved to 127.0.0.1 (fetch cannot set Host; http can).
    const port = Number(new URL(demo.url).port);
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/api/state', headers: { host: `evil.example:${port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.once('error', reject);
      req.end();
    });
    expect(rebound).toBe(421);
    // Nothing was applied by any of them.
    expect((await state()).faults.filter((f) => f.applied)).toEqual([]);
  });

  it('SIGINT tears everything down: no namespace, process or temp dir left', async () => {
    const lab = await attachLab();
    const pids = await labProcesses();
    expect(pids.length).toBeGreaterThan(0);
    demo.child.kill('SIGINT');
    expect(await exited(demo.child)).toBe(0);
    expect(demo.stderr()).toMatch(/SIGINT: tearing down/);
    expect(await listLabNamespaces()).toEqual([]);
    const alive = [];
    for (const pid of [...pids, demo.child.pid ?? 0]) if (await isAlive(pid)) alive.push(pid);
    expect(alive).toEqual([]);
    expect(existsSync(lab.workDir)).toBe(false);
    expect(existsSync(RUN_DIR)).toBe(false);
    expect(readdirSync('/tmp').filter((n) => n.startsWith('okome-lab-'))).toEqual([]);
  }, 90_000);
});
