import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { describeUnless } from './required-tools.js';

/**
 * Debian's Chromium driven by playwright-core, for the demo page's browser tests and its
 * screenshots. Only loopback is ever contacted: background networking is off and the page's
 * requests to anything else are aborted (and recorded, so a test can assert there were none).
 */

export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  // A name that is not loopback resolves to nothing: no lookup leaves the machine.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/** Why Chromium cannot run here, or undefined when it can. */
export function chromiumMissing(path: string = CHROMIUM_PATH): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return undefined;
  } catch {
    return `${path} is not installed (apt-get install chromium; .ci/run installs it)`;
  }
}

/** describe() for browser tests: skipped saying why without Chromium, a failure under OKOME_REQUIRE_LAB=1 (CI). */
export function describeWithBrowser(name: string, body: () => void): void {
  const why = chromiumMissing();
  describeUnless(name, why === undefined ? undefined : { what: 'chromium', why }, body);
}

export interface BrowserSession {
  readonly context: BrowserContext;
  /** Page requests to anything but loopback, aborted: a test expects none. */
  readonly blockedRequests: readonly string[];
  newPage(): Promise<Page>;
  /** Closes Chromium and removes its profile. */
  close(): Promise<void>;
}

const isLoopback = (url: string): boolean => {
  try {
    const { protocol, hostname } = new URL(url);
    if (protocol === 'data:' || protocol === 'blob:' || protocol === 'about:') return true;
    return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
  } catch {
    return false;
  }
};

/** Chromium with a fresh profile directory (removed on close) and a loopback-only page network. */
export async function launchBrowser(
  options: {
    readonly executablePath?: string;
    readonly viewport?: { readonly width: number; readonly height: number };
  } = {},
): Promise<BrowserSession> {
  const profile = await mkdtemp(join(tmpdir(), 'okome-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: options.executablePath ?? CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: options.viewport ?? { width: 1000, height: 800 },
      timeout: 30_000,
    });
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
  const blockedRequests: string[] = [];
  await context.route(
    (url) => !isLoopback(url.href),
    async (route) => {
      blockedRequests.push(route.request().url());
      await route.abort('blockedbyclient');
    },
  );
  return {
    context,
    blockedRequests,
    newPage: () => context.newPage(),
    close: async () => {
      try {
        await context.close();
      } finally {
        await rm(profile, { recursive: true, force: true });
      }
    },
  };
}

/**
 * A demo/web entry bundled in memory for the browser: one IIFE script, nothing written to disk.
 * `globalName` exposes the entry's exports on window.
 */
export async function bundleWebEntry(
  entry: string,
  options: { readonly globalName?: string } = {},
): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    charset: 'utf8',
    logLevel: 'silent',
    ...(options.globalName === undefined ? {} : { globalName: options.globalName }),
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error(`esbuild produced no output for ${entry}`);
  return file.text;
}

export interface StaticFile {
  readonly type: string;
  readonly body: string | Uint8Array;
}

/** Serves fixed files on 127.0.0.1 at a free port; anything else is a 404. */
export async function serveFiles(
  files: Readonly<Record<string, StaticFile>>,
): Promise<{ readonly url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const file = Object.hasOwn(files, path) ? files[path] : undefined;
    if (req.method !== 'GET' || file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

export interface ScreenshotOptions {
  /** Only this element, else the page. */
  readonly selector?: string;
  readonly fullPage?: boolean;
}

/** A PNG of an open page (or one element of it), written to `file`. */
export async function screenshotPage(
  page: Page,
  file: string,
  options: ScreenshotOptions = {},
): Promise<void> {
  const png =
    options.selector === undefined
      ? await page.screenshot({ fullPage: options.fullPage ?? false, animations: 'disabled' })
      : await page.locator(options.selector).screenshot({ animations: 'disabled' });
  await writeFile(file, png);
}

/**
 * Opens `url` in a fresh Chromium, waits for `waitFor` (a selector) and writes a PNG: for the
 * README's picture of the demo page, or any page served on loopback.
 */
export async function takeScreenshot(
  url: string,
  file: string,
  options: ScreenshotOptions & {
    readonly waitFor?: string;
    readonly viewport?: { readonly width: number; readonly height: number };
  } = {},
): Promise<void> {
  if (!isLoopback(url)) throw new Error(`takeScreenshot opens loopback pages only, not ${url}`);
  const browser = await launchBrowser(options.viewport === undefined ? {} : { viewport: options.viewport });
  try {
    const page = await browser.newPage();
    await page.goto(url, { waitUntil: 'load' });
    if (options.waitFor !== undefined)
      await page.locator(options.waitFor).first().waitFor({ timeout: 15_000 });
    await screenshotPage(page, file, options);
  } finally {
    await browser.close();
  }
}
