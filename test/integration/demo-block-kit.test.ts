import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BlockAction, MessageInput } from '../../demo/web/block-kit-types.js';
import { GALLERY_GLOBAL, type Gallery, type GalleryGroup } from '../../demo/web/gallery-api.js';
import { escapeText } from '../../src/slack/render/mrkdwn.js';
import {
  type BrowserSession,
  bundleWebEntry,
  describeWithBrowser,
  launchBrowser,
  screenshotPage,
  serveFiles,
} from '../support/browser.js';

/**
 * The demo page's Block Kit renderer in Chromium: every message in test/fixtures/golden (what
 * the bot really sends) renders with all its text and no placeholder; confirm dialogs gate
 * actions; hostile text stays text.
 */

const ROOT = join(import.meta.dirname, '../..');
const GOLDEN = join(ROOT, 'test/fixtures/golden');
const USERS: Readonly<Record<string, string>> = {
  U0REQUESTER: 'Rita Requester',
  U0APPROVER1: 'Alex Approver',
  U1: 'Una',
};
// 1×1 PNG, so the image blocks load from loopback.
const PIXEL = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Block Kit gallery</title>
<link rel="stylesheet" href="/style.css"></head>
<body><script src="/gallery.js"></script></body></html>`;

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every message in a golden file, whatever its shape ({text, blocks}, {root, evidence: […]}), in file order. */
function messagesIn(value: unknown): MessageInput[] {
  if (Array.isArray(value)) return value.flatMap(messagesIn);
  if (!isRecord(value)) return [];
  if (Array.isArray(value.blocks)) return [value as MessageInput];
  return Object.values(value).flatMap(messagesIn);
}

/** The text objects of a block that Slack shows without a click (not confirm dialogs). */
function visibleTexts(block: Json): string[] {
  const textOf = (t: unknown): string[] => (isRecord(t) && typeof t.text === 'string' ? [t.text] : []);
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  switch (block.type) {
    case 'section':
      return [
        ...textOf(block.text),
        ...list(block.fields).flatMap(textOf),
        ...(isRecord(block.accessory) ? textOf(block.accessory.text) : []),
      ];
    case 'header':
      return textOf(block.text);
    case 'context':
      return list(block.elements).flatMap(textOf);
    case 'actions':
      return list(block.elements).flatMap((e) => (isRecord(e) ? textOf(e.text) : []));
    case 'divider':
      return [];
    default:
      throw new Error(`the golden files use a block this test does not read: ${String(block.type)}`);
  }
}

/**
 * What must be visible of a mrkdwn source, worked out apart from the renderer: mentions as
 * @name, link labels, entities decoded, emoji (drawn as pictures) and the markup characters
 * dropped. The pieces between are the visible text, in order.
 */
function fragments(source: string): string[] {
  return source
    .replace(/<@([UW][A-Z0-9]+)(?:\|[^>]*)?>/g, (_, id: string) => ` @${USERS[id] ?? id} `)
    .replace(/<#[CGD][A-Z0-9]+\|([^>]*)>/g, ' #$1 ')
    .replace(/<[^|>]+\|([^>]*)>/g, ' $1 ')
    .replace(/:[a-z0-9_+-]*[a-z][a-z0-9_+-]*:/g, ' ')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&')
    .split(/[\s*_~`]+/)
    .filter((f) => f !== '');
}

interface GoldenFile {
  readonly name: string;
  readonly messages: MessageInput[];
}

async function loadGolden(): Promise<GoldenFile[]> {
  const names = (await readdir(GOLDEN)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    names.map(async (name) => ({
      name,
      messages: messagesIn(JSON.parse(await readFile(join(GOLDEN, name), 'utf8'))),
    })),
  );
}

let browser: BrowserSession | undefined;
let server: { url: string; close(): Promise<void> } | undefined;
let page: Page;
let golden: GoldenFile[];

async function show(groups: readonly GalleryGroup[]): Promise<void> {
  await page.evaluate(
    ([name, g, users]) => (globalThis as unknown as Record<string, Gallery>)[name]?.show(g, users),
    [GALLERY_GLOBAL, groups, USERS] as const,
  );
}

async function actions(): Promise<BlockAction[]> {
  return page.evaluate(
    (name) => [...((globalThis as unknown as Record<string, Gallery>)[name]?.actions ?? [])],
    GALLERY_GLOBAL,
  );
}

describeWithBrowser('the demo page renders Block Kit as Slack does', () => {
  beforeAll(async () => {
    golden = await loadGolden();
    const [script, css] = await Promise.all([
      bundleWebEntry(join(ROOT, 'demo/web/gallery.ts')),
      readFile(join(ROOT, 'demo/web/style.css'), 'utf8'),
    ]);
    server = await serveFiles({
      '/': { type: 'text/html; charset=utf-8', body: PAGE },
      '/gallery.js': { type: 'text/javascript; charset=utf-8', body: script },
      '/style.css': { type: 'text/css; charset=utf-8', body: css },
      '/pixel.png': { type: 'image/png', body: PIXEL },
    });
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.goto(`${server.url}/`);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows every golden message: each block’s text, in order, and no placeholder', async () => {
    expect(golden.length).toBeGreaterThanOrEqual(10);
    await show(golden.map((g) => ({ name: g.name, messages: g.messages })));
    let checked = 0;
    for (const file of golden) {
      const rendered = page.locator(`[data-group="${file.name}"] .sk-message`);
      expect(await rendered.count(), file.name).toBe(file.messages.length);
      for (const [m, message] of file.messages.entries()) {
        const blocks = (message.blocks ?? []) as Json[];
        const texts = await rendered.nth(m).locator('.sk-blocks > .sk-block').allInnerTexts();
        expect(texts, `${file.name} message ${m}`).toHaveLength(blocks.length);
        for (const [b, block] of blocks.entries()) {
          const shown = texts[b] ?? '';
          let at = 0;
          for (const piece of visibleTexts(block).flatMap(fragments)) {
            const found = shown.indexOf(piece, at);
            expect(
              found,
              `${file.name} message ${m} block ${b}: "${piece}" in\n${shown}`,
            ).toBeGreaterThanOrEqual(at);
            at = found + piece.length;
            checked += 1;
          }
          // No markup is left over: entities, mention tokens and emoji shortcodes are all drawn.
          expect(shown, `${file.name} message ${m} block ${b}`).not.toMatch(/&amp;|&lt;|&gt;|<@|```/);
          expect(shown).not.toMatch(/:[a-z_]+:/);
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(await page.locator('.sk-unsupported').count()).toBe(0);
    expect(await page.locator('body').innerText()).not.toContain('unsupported');
    expect(browser?.blockedRequests).toEqual([]);
  });

  it('draws the golden markup as Slack does: header, code, bold, strike, mentions, code blocks, styled buttons', async () => {
    await show(golden.map((g) => ({ name: g.name, messages: g.messages })));
    const healthy = page.locator('[data-group="summary-healthy.json"]');
    expect(await healthy.locator('h2.sk-header').innerText()).toBe('OKOME status: healthy');
    expect(await healthy.locator('code').first().innerText()).toBe('10.86.0.18');
    expect(await healthy.locator('b').first().innerText()).toBe('pi-a');
    expect(await healthy.locator('.sk-emoji').first().innerText()).toBe('🟢');
    expect(await healthy.locator('.sk-context .sk-context-text').count()).toBe(2);

    const resolved = page.locator('[data-group="incident-1-resolved.json"]');
    expect(await resolved.locator('s').innerText()).toBe('Incident 1 — UI is slow or blank (pi-a)');

    const card = page.locator('[data-group="approval-card-disable-chaos.json"]');
    expect(await card.locator('.sk-mention').innerText()).toBe('@Rita Requester');
    expect(await card.locator('pre.sk-pre').innerText()).toContain(
      'sudo iptables -F && sudo iptables -t nat -F',
    );
    expect(await card.locator('pre.sk-pre').innerText()).toContain(
      '(10.86.0.20)\nsudo systemctl restart nginx',
    );
    expect(
      await card.getByRole('button', { name: 'Approve: disable chaos on pi-a' }).getAttribute('class'),
    ).toContain('sk-primary');
    expect(await card.getByRole('button', { name: 'Reject' }).getAttribute('class')).toContain('sk-danger');
    expect(await card.locator('.sk-actions').getAttribute('data-block-id')).toBe(
      'approval:ap_aaaaaaaaaaaaaaaaaaaa',
    );

    const help = page.locator('[data-group="help.json"]');
    expect(await help.locator('code').allInnerTexts()).toContain(
      '/okome check <check-id | node | incident-number>',
    );

    // The thread file: the root, then its evidence as a reply.
    const thread = page.locator('[data-group="incident-1-thread.json"] .sk-thread');
    expect(await thread.locator('.sk-reply-count').innerText()).toBe('1 reply');
  });

  it('a button with a confirm asks first: Cancel and Escape run nothing, Approve reports the action once', async () => {
    const card = golden.find((g) => g.name === 'approval-card-disable-chaos.json');
    if (card === undefined) throw new Error('approval card golden file missing');
    await show([{ name: card.name, messages: card.messages }]);
    const approve = page.getByRole('button', { name: 'Approve: disable chaos on pi-a', exact: true });
    const dialog = page.locator('dialog.sk-dialog');

    await approve.click();
    await dialog.waitFor({ state: 'visible' });
    expect(await dialog.locator('.sk-dialog-title').innerText()).toBe('Disable chaos on pi-a?');
    // The command is clipped inside its code span, which stays closed: shown as code, no backtick.
    const text = dialog.locator('.sk-dialog-text');
    expect(await text.innerText()).toMatch(
      /^Runs sudo rm -f \/etc\/okome\/CHAOS_ENABLE on pi-a; sudo iptables -F && .*… \(\+\d+ more characters\)\.$/,
    );
    expect(await text.locator('code').innerText()).toContain('sudo iptables -F && sudo iptables -t nat -F');
    await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await actions()).toEqual([]);

    await approve.click();
    await dialog.waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await actions()).toEqual([]);

    await approve.click();
    await dialog.waitFor({ state: 'visible' });
    // Modal: the page behind it cannot be clicked meanwhile.
    expect(
      await page.evaluate(() =>
        (
          globalThis as unknown as {
            document: { querySelector(s: string): { matches(s: string): boolean } | null };
          }
        ).document
          .querySelector('dialog')
          ?.matches(':modal'),
      ),
    ).toBe(true);
    await dialog.getByRole('button', { name: 'Approve', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    const approved = {
      actionId: 'okome:approve:ap_aaaaaaaaaaaaaaaaaaaa',
      value: 'ap_aaaaaaaaaaaaaaaaaaaa',
      blockId: 'approval:ap_aaaaaaaaaaaaaaaaaaaa',
    };
    expect(await actions()).toEqual([approved]);

    // No confirm: the click is the action.
    await page.getByRole('button', { name: 'Reject', exact: true }).click();
    expect(await actions()).toEqual([
      approved,
      {
        actionId: 'okome:reject:ap_aaaaaaaaaaaaaaaaaaaa',
        value: 'ap_aaaaaaaaaaaaaaaaaaaa',
        blockId: 'approval:ap_aaaaaaaaaaaaaaaaaaaa',
      },
    ]);
  });

  it('hostile text stays text: <img onerror> and <script> in every text field create no element and run nothing', async () => {
    const hostile = '<img src=x onerror="globalThis.pwned=1"><script>globalThis.pwned=2</script>';
    const plain = (text: string) => ({ type: 'plain_text', text });
    const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
    await show([
      { name: 'text only', messages: [{ text: hostile, username: hostile }] },
      {
        name: 'blocks',
        messages: [
          {
            user: 'U0REQUESTER',
            blocks: [
              { type: 'header', text: plain(hostile) },
              {
                type: 'section',
                text: mrkdwn(`${hostile} ${escapeText(hostile)}`),
                fields: [mrkdwn(hostile), plain(hostile)],
                accessory: {
                  type: 'button',
                  action_id: 'hostile',
                  text: plain(hostile),
                  confirm: {
                    title: plain(hostile),
                    text: mrkdwn(hostile),
                    confirm: plain(hostile),
                    deny: plain('No'),
                  },
                },
              },
              { type: 'context', elements: [mrkdwn(hostile), plain(hostile)] },
              {
                type: 'section',
                text: mrkdwn('<javascript:globalThis.pwned=3|click me> <data:text/html,x|data>'),
              },
              { type: 'image', image_url: 'javascript:globalThis.pwned=4', alt_text: hostile },
              { type: hostile },
            ],
          },
        ],
      },
    ]);
    const gallery = page.locator('.sk-gallery');
    expect(await gallery.locator('img, script, iframe, [onerror]').count()).toBe(0);
    expect(await gallery.locator('a').count()).toBe(0);
    await page.getByRole('button', { name: hostile, exact: true }).click({ timeout: 5000 });
    const dialog = page.locator('dialog.sk-dialog');
    await dialog.waitFor({ state: 'visible' });
    expect(await dialog.locator('img, script, [onerror]').count()).toBe(0);
    expect(await dialog.locator('.sk-dialog-title').innerText()).toBe(hostile);
    await dialog.getByRole('button', { name: 'No', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });

    const text = await gallery.innerText();
    // The header, the section (raw and escaped), two fields, the button, two context parts, the
    // image's alt text, the unknown block's type, the text-only message and its author.
    expect(text.split(hostile).length - 1).toBe(12);
    expect(text).toContain('click me data');
    expect(text).toContain(`unsupported block: ${hostile}`);
    expect(await page.evaluate(() => (globalThis as { pwned?: unknown }).pwned)).toBeUndefined();
    expect(await actions()).toEqual([]);
    expect(browser?.blockedRequests).toEqual([]);
  });

  it('draws the other blocks the bot may send: fields in two columns, overflow, divider, image, rich text; text-only messages as mrkdwn; unknown blocks as a placeholder', async () => {
    const server_ = server;
    if (server_ === undefined) throw new Error('no server');
    await show([
      {
        name: 'more',
        messages: [
          {
            ts: '1764633600.000100',
            edited: true,
            user: 'U1',
            blocks: [
              {
                type: 'section',
                block_id: 'facts',
                text: { type: 'mrkdwn', text: '*Facts*' },
                fields: [
                  { type: 'mrkdwn', text: '*Node*\npi-a' },
                  { type: 'mrkdwn', text: '*State*\nactive' },
                  { type: 'plain_text', text: 'Left' },
                  { type: 'plain_text', text: 'Right' },
                ],
                accessory: {
                  type: 'overflow',
                  action_id: 'more-menu',
                  options: [
                    { text: { type: 'plain_text', text: 'Flush redis' }, value: 'flush' },
                    { text: { type: 'plain_text', text: 'Reboot' }, value: 'reboot' },
                  ],
                },
              },
              { type: 'divider' },
              {
                type: 'image',
                image_url: `${server_.url}/pixel.png`,
                alt_text: 'a pixel',
                title: { type: 'plain_text', text: 'Pixel' },
              },
              {
                type: 'context',
                elements: [
                  { type: 'image', image_url: `${server_.url}/pixel.png`, alt_text: 'icon' },
                  { type: 'plain_text', text: 'with an icon' },
                ],
              },
              {
                type: 'rich_text',
                elements: [
                  {
                    type: 'rich_text_section',
                    elements: [{ type: 'text', text: 'Steps', style: { bold: true } }],
                  },
                  {
                    type: 'rich_text_list',
                    style: 'ordered',
                    elements: [
                      { type: 'rich_text_section', elements: [{ type: 'text', text: 'stop nginx' }] },
                      { type: 'rich_text_section', elements: [{ type: 'text', text: 'start nginx' }] },
                    ],
                  },
                  { type: 'rich_text_quote', elements: [{ type: 'text', text: 'quoted' }] },
                  { type: 'rich_text_preformatted', elements: [{ type: 'text', text: 'exit 0' }] },
                ],
              },
            ],
          },
          { text: '_plain_ *text* with <!here> and > no quote\n&gt; a quote' },
          { blocks: [{ type: 'video', title: { type: 'plain_text', text: 'x' } }] },
        ],
      },
    ]);
    const group = page.locator('[data-group="more"]');
    const fields = group.locator('.sk-field');
    expect(await fields.count()).toBe(4);
    const [a, b, c] = await Promise.all([0, 1, 2].map((i) => fields.nth(i).boundingBox()));
    if (!a || !b || !c) throw new Error('fields not laid out');
    expect(b.y).toBe(a.y);
    expect(b.x).toBeGreaterThan(a.x + a.width);
    expect(c.x).toBe(a.x);
    expect(c.y).toBeGreaterThan(a.y);
    expect(await group.locator('.sk-edited').innerText()).toBe('(edited)');
    expect(await group.locator('.sk-author').first().innerText()).toBe('Una');

    const more = group.getByRole('button', { name: 'More actions' });
    await more.click();
    await page.keyboard.press('Escape');
    expect(await group.getByRole('menuitem', { name: 'Reboot' }).isVisible()).toBe(false);
    await more.click();
    await group.getByRole('menuitem', { name: 'Reboot' }).click();
    expect(await actions()).toEqual([{ actionId: 'more-menu', value: 'reboot', blockId: 'facts' }]);
    expect(await group.getByRole('menuitem', { name: 'Reboot' }).isVisible()).toBe(false);

    expect(await group.locator('hr.sk-divider').count()).toBe(1);
    const images = group.locator('img');
    expect(await images.count()).toBe(2);
    await page.waitForFunction(
      () =>
        (
          globalThis as unknown as {
            document: { images: ArrayLike<{ complete: boolean; naturalWidth: number }> };
          }
        ).document.images.length === 2 &&
        Array.from(
          (
            globalThis as unknown as {
              document: { images: ArrayLike<{ complete: boolean; naturalWidth: number }> };
            }
          ).document.images,
        ).every((i) => i.complete && i.naturalWidth === 1),
    );
    expect(await group.locator('.sk-rich-text b').innerText()).toBe('Steps');
    expect(await group.locator('.sk-rich-text ol li').allInnerTexts()).toEqual(['stop nginx', 'start nginx']);
    expect(await group.locator('.sk-rich-text blockquote').innerText()).toBe('quoted');
    expect(await group.locator('.sk-rich-text pre').innerText()).toBe('exit 0');

    const textOnly = group.locator('.sk-message').nth(1);
    expect(await textOnly.locator('i').innerText()).toBe('plain');
    expect(await textOnly.locator('b').innerText()).toBe('text');
    expect(await textOnly.locator('.sk-broadcast').innerText()).toBe('@here');
    expect(await textOnly.locator('blockquote').innerText()).toBe('a quote');

    expect(await group.locator('.sk-unsupported').allInnerTexts()).toEqual(['unsupported block: video']);
    expect(browser?.blockedRequests).toEqual([]);
  });

  it('takes a screenshot of what it shows', async () => {
    await show(golden.map((g) => ({ name: g.name, messages: g.messages })));
    const dir = await mkdtemp(join(tmpdir(), 'okome-shot-'));
    try {
      const file = join(dir, 'golden.png');
      await screenshotPage(page, file, { fullPage: true });
      const png = await readFile(file);
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
