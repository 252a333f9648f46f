import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BrowserSession, chromiumMissing, launchBrowser, screenshotPage } from '../support/browser.js';
import { attachLab, type Lab, REPO_ROOT } from '../support/lab/lab.js';
import { listLabNamespaces } from '../support/lab/network.js';
import { downLab, isAlive, labProcesses } from '../support/lab/teardown.js';
import { describeLab } from '../support/lab/vitest-lab.js';

/**
 * The demo page in Debian's Chromium, as a newcomer uses it: type, click the fault panel,
 * switch persona, click Approve and confirm the dialog. The lab is checked for what really ran.
 */

let child: ChildProcess;
let url: string;
let stderr = '';
let browser: BrowserSession;
let page: Page;
let lab: Lab;
const pageErrors: string[] = [];
/** `npm run demo:screenshot` sets it: the README's picture of the page, taken mid-tour. */
const SCREENSHOT = process.env.OKOME_DEMO_SCREENSHOT;

function startDemo(): Promise<string> {
  child = spawn(process.execPath, ['--import', 'tsx', 'demo/demo.ts'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const found = /^okome demo: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(out)?.[1];
      if (found !== undefined) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}) before its URL:\n${stderr}`)));
  });
}

const feed = () => page.locator('#feed');

async function type(text: string): Promise<void> {
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
}

/** The channel message (root) whose text contains `text`, newest first. */
const rootWith = (text: string) => page.locator('#feed > .sk-message').filter({ hasText: text }).last();

async function actAs(persona: string): Promise<void> {
  await page.click(`[data-persona="${persona}"]`);
  await page.locator(`[data-persona="${persona}"][aria-pressed="true"]`).waitFor();
}

/** Clicks the card's Approve button and confirms Slack's dialog. */
async function approve(card: string): Promise<void> {
  const button = page
    .locator('.replies .sk-message')
    .filter({ hasText: card })
    .last()
    .locator('button', {
      hasText: /^Approve/,
    });
  await button.click();
  await page.locator('dialog.sk-dialog .sk-dialog-confirm').click();
}

describeLab('npm run demo in the browser', () => {
  beforeAll(async () => {
    const missing = chromiumMissing();
    if (missing !== undefined) throw new Error(missing);
    url = await startDemo();
    lab = await attachLab();
    browser = await launchBrowser({ viewport: { width: 1400, height: 900 } });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(url);
    await page.locator('#conn.live').waitFor({ timeout: 15_000 });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    await downLab();
  });

  it('the composer suggests the commands; /okome status → "healthy"', async () => {
    await page.fill('#composer-input', '/okome st');
    await expect
      .poll(() => page.locator('#suggestions li').allInnerTexts())
      .toEqual([expect.stringMatching(/^\/okome status/)]);
    await type('/okome status');
    await feed()
      .getByText(/healthy/)
      .first()
      .waitFor({ timeout: 30_000 });
  });

  it('stop redis on pi-b → incident 2; Sam (no rights) is told why; Avery approves → exit 0, verified, redis active', async () => {
    await page.click('[data-fault="service-stop:pi-b:redis-server"] button');
    await page.locator('[data-fault="service-stop:pi-b:redis-server"].applied').waitFor({ timeout: 30_000 });
    await type('/okome status');
    const incident = rootWith('Incident 2');
    await incident.waitFor({ timeout: 30_000 });
    await incident.locator('.thread-toggle').click();
    const card = 'Restart redis-server on pi-b';
    await page
      .locator('.replies .sk-message')
      .filter({ hasText: card })
      .locator('button', { hasText: /^Approve/ })
      .waitFor({ timeout: 30_000 });

    await actAs('stranger');
    await approve(card);
    await page.locator('.ephemeral').filter({ hasText: 'may not approve' }).waitFor({ timeout: 15_000 });
    expect(await lab.unitState('pi-b', 'redis-server')).toBe('inactive');

    await actAs('approver1');
    await approve(card);
    const thread = rootWith('Incident 2').locator('.replies');
    await thread.getByText('Verification').first().waitFor({ timeout: 60_000 });
    expect(await thread.innerText()).toMatch(/sudo systemctl restart redis-server.*on pi-b.*exit 0/);
    expect(await lab.unitState('pi-b', 'redis-server')).toBe('active');
    await page
      .locator('[data-fault="service-stop:pi-b:redis-server"]:not(.applied):not(.busy)')
      .waitFor({ timeout: 15_000 });
    if (SCREENSHOT !== undefined) {
      await page.locator('#tour b', { hasText: 'Incident 2' }).click();
      await screenshotPage(page, SCREENSHOT);
    }
  });

  it('stop keepalived on pi-a from the panel → the failover notice, no command typed; the panel shows the VIP on pi-b', async () => {
    const fault = page.locator('[data-fault="service-stop:pi-a:keepalived"]');
    await fault.locator('button').click();
    await feed()
      .getByText(/VIP moved from pi-a to pi-b/)
      .waitFor({ timeout: 30_000 });
    await page.locator('#vip-holder', { hasText: /^pi-b$/ }).waitFor({ timeout: 15_000 });
    await fault.locator('button', { hasText: 'Revert' }).click();
    await page
      .locator('[data-fault="service-stop:pi-a:keepalived"]:not(.applied):not(.busy)')
      .waitFor({ timeout: 30_000 });
    expect(await lab.vipHolders()).toEqual(['pi-a']);
  });

  it('the page asked for nothing off this machine, threw nothing, and rendered every block', async () => {
    expect(browser.blockedRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
    // Every thread opened: each click redraws the channel, so the next closed one is found anew.
    const closed = page.locator('.thread-toggle[aria-expanded="false"]');
    for (let n = await closed.count(); n > 0; n -= 1) await closed.first().click();
    expect(await closed.count()).toBe(0);
    expect(await page.locator('.sk-unsupported').count()).toBe(0);
  });

  it('SIGINT leaves no namespace, process or work dir', async () => {
    await browser.close();
    const pids = await labProcesses();
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(child.exitCode, stderr).toBe(0);
    expect(await listLabNamespaces()).toEqual([]);
    const alive = [];
    for (const pid of pids) if (await isAlive(pid)) alive.push(pid);
    expect(alive).toEqual([]);
    expect(existsSync(lab.workDir)).toBe(false);
  }, 90_000);
});
