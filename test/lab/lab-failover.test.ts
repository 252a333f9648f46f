import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { FaultHandle } from '../support/lab/faults.js';
import { type HookListener, startHookListener } from '../support/lab/hook-listener.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { labRequest } from '../support/lab/lab-http.js';
import { describeLab } from '../support/lab/vitest-lab.js';

const VIP = 'http://10.86.0.18';

function isState(node: string, state: string) {
  return (event: { body: unknown }) => {
    const body = event.body as { node?: string; instance?: string; state?: string };
    return body.node === node && body.instance === 'VI_1' && body.state === state;
  };
}

describeLab('lab VIP failover', () => {
  let lab: Lab;
  let hooks: HookListener;
  let fault: FaultHandle | undefined;

  beforeAll(async () => {
    lab = await startLab();
    hooks = await startHookListener(lab);
  });
  afterEach(async () => {
    await fault?.revert();
    fault = undefined;
  });
  afterAll(async () => {
    await hooks?.stop();
    await lab?.down();
  });

  it('stopping keepalived on pi-a moves the VIP to pi-b within 5 s and notifies okl-bot', async () => {
    const since = Date.now();
    const started = performance.now();
    fault = await lab.fault('service-stop', { node: 'pi-a', service: 'keepalived' });
    const movedMs = performance.now() - started;
    await lab.waitForVip(['pi-b'], 20_000);
    const vipMs = performance.now() - started;
    const hook = await hooks.waitFor((e) => e.at >= since && isState('pi-b', 'MASTER')(e), 15_000);
    const hookMs = hook.at - since;
    console.info(
      `[lab] keepalived stopped on pi-a: VIP on pi-b after ${Math.round(vipMs)} ms (stop took ${Math.round(movedMs)} ms), notify_master at ${hookMs} ms`,
    );
    expect(vipMs).toBeLessThan(5000);
    expect(hookMs).toBeLessThan(5000);
    expect(hook.path).toBe('/hooks/keepalived');
    const served = await labRequest(lab, `${VIP}/`);
    expect(served.status).toBe(200);
    expect(served.headers['x-okome-node']).toBe('backend-spare');
    const journal = await lab.ssh('pi-b', 'journalctl -u keepalived --since "10 minutes ago" --no-pager');
    expect(journal.stdout).toMatch(/pi-b Keepalived_vrrp\[\d+\]: \(VI_1\) Entering MASTER STATE/);

    const back = Date.now();
    await fault.revert();
    fault = undefined;
    expect(await lab.vipHolders()).toEqual(['pi-a']);
    await hooks.waitFor((e) => e.at >= back && isState('pi-a', 'MASTER')(e), 15_000);
    await hooks.waitFor((e) => e.at >= back && isState('pi-b', 'BACKUP')(e), 15_000);
    expect((await labRequest(lab, `${VIP}/`)).headers['x-okome-node']).toBe('frontend-cache');
  });

  it('fault keepalived-kill: pi-a keeps a stale VIP while pi-b takes it (split brain)', async () => {
    const started = performance.now();
    fault = await lab.fault('keepalived-kill', { node: 'pi-a' });
    // About 3 s on an idle machine (three missed adverts); the bound only stops a hung test.
    await lab.waitForVip(['pi-a', 'pi-b'], 20_000);
    console.info(
      `[lab] keepalived killed on pi-a: both hold the VIP after ${Math.round(performance.now() - started)} ms`,
    );
    const seen = await Promise.all([lab.ssh('pi-a', 'ip -o addr show'), lab.ssh('pi-b', 'ip -o addr show')]);
    for (const result of seen) expect(result.stdout).toContain('inet 10.86.0.18/24');
    const state = await lab.ssh('pi-a', 'systemctl is-active keepalived');
    expect({ code: state.code, out: state.stdout.trim() }).toEqual({ code: 3, out: 'failed' });
    expect((await lab.ssh('pi-a', 'systemctl status keepalived --no-pager')).stdout).toContain(
      'Active: failed (Result: signal)',
    );
    // The catalogue's remedy, as the lab user: restarting keepalived clears the stale copy.
    expect((await lab.ssh('pi-a', 'sudo systemctl restart keepalived')).code).toBe(0);
    await lab.waitForVip(['pi-a'], 20_000);
    // Remedied by hand: no second restart in afterEach.
    fault = undefined;
  });

  it('fault link-down: pi-a’s link down moves the VIP to pi-b; pi-a is unreachable', async () => {
    const started = performance.now();
    fault = await lab.fault('link-down', { node: 'pi-a' });
    await lab.waitForVip(['pi-b'], 20_000);
    console.info(
      `[lab] pi-a link down: VIP on pi-b only after ${Math.round(performance.now() - started)} ms`,
    );
    expect((await labRequest(lab, `${VIP}/`)).headers['x-okome-node']).toBe('backend-spare');
    const unreachable = await labRequest(lab, 'http://10.86.0.20/healthz', { maxTimeSec: 1 });
    expect(unreachable.status).toBe(0);
    expect(unreachable.curlExit).toBe(28);
    await fault.revert();
    fault = undefined;
    expect((await labRequest(lab, 'http://10.86.0.20/healthz')).status).toBe(200);
    expect(await lab.vipHolders()).toEqual(['pi-a']);
  });

  it('fault service-stop nginx on pi-a: the track script gives the VIP to pi-b', async () => {
    const started = performance.now();
    fault = await lab.fault('service-stop', { node: 'pi-a', service: 'nginx' });
    await lab.waitForVip(['pi-b'], 20_000);
    console.info(
      `[lab] nginx stopped on pi-a: VIP on pi-b after ${Math.round(performance.now() - started)} ms`,
    );
    expect((await lab.ssh('pi-a', 'systemctl is-active nginx')).stdout.trim()).toBe('inactive');
    expect((await labRequest(lab, `${VIP}/`)).headers['x-okome-node']).toBe('backend-spare');
  });
});
