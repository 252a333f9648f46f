import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLOCK_KIT_LIMITS, checkMessage, checkView } from '../support/slack-emulator/block-kit-limits.js';

const plain = (text: string) => ({ type: 'plain_text', text });
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
const section = (text: string) => ({ type: 'section', text: mrkdwn(text) });
const button = (fields: Record<string, unknown> = {}) => ({
  type: 'button',
  action_id: 'go',
  text: plain('Go'),
  ...fields,
});
const actions = (...elements: unknown[]) => ({ type: 'actions', elements });
const confirm = (fields: Record<string, unknown> = {}) => ({
  title: plain('Restart?'),
  text: mrkdwn('This restarts okome-cache-2'),
  confirm: plain('Restart'),
  deny: plain('Cancel'),
  ...fields,
});

function errorsOf(blocks: unknown[]): string[] {
  const verdict = checkMessage({ text: 'fallback', blocks });
  return verdict.ok ? [] : verdict.errors;
}

/** Blocks holding one string of `length` characters at the field a limit applies to. */
const LENGTH_LIMITS: ReadonlyArray<{
  readonly field: string;
  readonly max: number;
  readonly pointer: string;
  readonly blocks: (text: string) => unknown[];
}> = [
  { field: 'section text', max: 3000, pointer: '/blocks/0/text/text', blocks: (t) => [section(t)] },
  {
    field: 'section field',
    max: 2000,
    pointer: '/blocks/0/fields/0/text',
    blocks: (t) => [{ type: 'section', fields: [mrkdwn(t)] }],
  },
  {
    field: 'header',
    max: 150,
    pointer: '/blocks/0/text/text',
    blocks: (t) => [{ type: 'header', text: plain(t) }],
  },
  {
    field: 'button text',
    max: 75,
    pointer: '/blocks/0/elements/0/text/text',
    blocks: (t) => [actions(button({ text: plain(t) }))],
  },
  {
    field: 'button value',
    max: 2000,
    pointer: '/blocks/0/elements/0/value',
    blocks: (t) => [actions(button({ value: t }))],
  },
  {
    field: 'action_id',
    max: 255,
    pointer: '/blocks/0/elements/0/action_id',
    blocks: (t) => [actions(button({ action_id: t }))],
  },
  {
    field: 'block_id',
    max: 255,
    pointer: '/blocks/0/block_id',
    blocks: (t) => [{ ...section('x'), block_id: t }],
  },
  {
    field: 'confirm title',
    max: 100,
    pointer: '/blocks/0/elements/0/confirm/title/text',
    blocks: (t) => [actions(button({ confirm: confirm({ title: plain(t) }) }))],
  },
  {
    field: 'confirm text',
    max: 300,
    pointer: '/blocks/0/elements/0/confirm/text/text',
    blocks: (t) => [actions(button({ confirm: confirm({ text: mrkdwn(t) }) }))],
  },
  {
    field: 'confirm button',
    max: 30,
    pointer: '/blocks/0/elements/0/confirm/confirm/text',
    blocks: (t) => [actions(button({ confirm: confirm({ confirm: plain(t) }) }))],
  },
  {
    field: 'deny button',
    max: 30,
    pointer: '/blocks/0/elements/0/confirm/deny/text',
    blocks: (t) => [actions(button({ confirm: confirm({ deny: plain(t) }) }))],
  },
];

const COUNT_LIMITS: ReadonlyArray<{
  readonly what: string;
  readonly max: number;
  readonly pointer: string;
  readonly blocks: (count: number) => unknown[];
}> = [
  {
    what: 'blocks',
    max: 50,
    pointer: '/blocks',
    blocks: (n) => Array.from({ length: n }, () => section('x')),
  },
  {
    what: 'section fields',
    max: 10,
    pointer: '/blocks/0/fields',
    blocks: (n) => [{ type: 'section', fields: Array.from({ length: n }, () => mrkdwn('f')) }],
  },
  {
    what: 'context elements',
    max: 10,
    pointer: '/blocks/0/elements',
    blocks: (n) => [{ type: 'context', elements: Array.from({ length: n }, () => mrkdwn('c')) }],
  },
  {
    what: 'actions elements',
    max: 25,
    pointer: '/blocks/0/elements',
    blocks: (n) => [actions(...Array.from({ length: n }, (_, i) => button({ action_id: `a${i}` })))],
  },
];

describe('checkMessage: Block Kit limits', () => {
  it.each(LENGTH_LIMITS)('$field: $max characters pass, one more is invalid_blocks at $pointer', (limit) => {
    expect(errorsOf(limit.blocks('x'.repeat(limit.max)))).toEqual([]);
    const verdict = checkMessage({ text: 't', blocks: limit.blocks('x'.repeat(limit.max + 1)) });
    expect(verdict).toMatchObject({ ok: false, error: 'invalid_blocks' });
    expect(verdict.ok ? [] : verdict.errors).toEqual([
      `must be less than ${limit.max + 1} characters, got ${limit.max + 1} [json-pointer:${limit.pointer}]`,
    ]);
  });

  it.each(COUNT_LIMITS)('$what: $max pass, one more is invalid at $pointer', (limit) => {
    expect(errorsOf(limit.blocks(limit.max))).toEqual([]);
    expect(errorsOf(limit.blocks(limit.max + 1))).toEqual([
      `must be no more than ${limit.max} items, got ${limit.max + 1} [json-pointer:${limit.pointer}]`,
    ]);
  });

  it('refuses text above 40,000 characters and warns above 4,000', () => {
    expect(checkMessage({ text: 'x'.repeat(4000) })).toEqual({ ok: true, warnings: [] });
    expect(checkMessage({ text: 'x'.repeat(4001) })).toEqual({
      ok: true,
      warnings: ['text is 4001 characters; Slack advises at most 4000 [json-pointer:/text]'],
    });
    expect(checkMessage({ text: 'x'.repeat(40_000) }).ok).toBe(true);
    expect(checkMessage({ text: 'x'.repeat(40_001) })).toMatchObject({ ok: false, error: 'msg_too_long' });
  });

  it('counts characters, not UTF-16 code units', () => {
    expect(errorsOf([section('🔥'.repeat(BLOCK_KIT_LIMITS.sectionText))])).toEqual([]);
    expect(errorsOf([section('🔥'.repeat(BLOCK_KIT_LIMITS.sectionText + 1))])).toHaveLength(1);
  });

  it('refuses a duplicate action_id anywhere in the message, and a duplicate block_id', () => {
    const accessory = { type: 'section', text: mrkdwn('s'), accessory: button({ action_id: 'restart' }) };
    expect(errorsOf([actions(button({ action_id: 'restart' })), accessory])).toEqual([
      'duplicate action_id "restart", first used at /blocks/0/elements/0/action_id [json-pointer:/blocks/1/accessory/action_id]',
    ]);
    expect(
      errorsOf([
        { ...section('a'), block_id: 'b' },
        { type: 'divider', block_id: 'b' },
      ]),
    ).toEqual(['duplicate block_id "b", first used at /blocks/0/block_id [json-pointer:/blocks/1/block_id]']);
  });

  it('refuses malformed blocks as Slack does', () => {
    expect(checkMessage({ text: 't', blocks: { type: 'section' } })).toMatchObject({
      ok: false,
      error: 'invalid_blocks_format',
    });
    expect(errorsOf([{ type: 'carousel-of-doom' }])).toEqual([
      'unsupported block type "carousel-of-doom" [json-pointer:/blocks/0/type]',
    ]);
    expect(errorsOf([{ type: 'header', text: mrkdwn('*h*') }])).toEqual([
      'must be plain_text, got "mrkdwn" [json-pointer:/blocks/0/text/type]',
    ]);
    expect(errorsOf([section('')])).toEqual([
      'must be more than 0 characters [json-pointer:/blocks/0/text/text]',
    ]);
    expect(errorsOf([{ type: 'section' }])).toEqual([
      'must provide either text or fields [json-pointer:/blocks/0]',
    ]);
    expect(errorsOf([actions()])).toEqual(['must provide at least 1 item [json-pointer:/blocks/0/elements]']);
    expect(errorsOf([actions(button({ style: 'danger-ish' }))])).toEqual([
      `must be 'primary' or 'danger', got "danger-ish" [json-pointer:/blocks/0/elements/0/style]`,
    ]);
    expect(errorsOf(['section'])).toEqual(['must provide an object [json-pointer:/blocks/0]']);
  });

  it('accepts the blocks this bot sends', () => {
    const blocks = [
      { type: 'header', text: plain('INC-1: okome-cache-2 down') },
      { type: 'section', fields: [mrkdwn('*node*\nokome-cache-2'), mrkdwn('*since*\n04:00')] },
      {
        type: 'context',
        elements: [mrkdwn('runbook v3'), { type: 'image', image_url: 'https://x/i.png', alt_text: 'i' }],
      },
      { type: 'divider' },
      actions(
        button({ action_id: 'ack', style: 'primary', value: 'INC-1' }),
        button({ action_id: 'restart', confirm: confirm() }),
      ),
    ];
    expect(checkMessage({ text: 'INC-1', blocks })).toEqual({ ok: true, warnings: [] });
  });

  it('agrees with the section limit for every text length (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 * BLOCK_KIT_LIMITS.sectionText }), (length) => {
        const ok = errorsOf([section('a'.repeat(length))]).length === 0;
        return ok === length <= BLOCK_KIT_LIMITS.sectionText;
      }),
    );
  });
});

describe('checkView: modals and the home tab', () => {
  const modal = (fields: Record<string, unknown> = {}) => ({
    type: 'modal',
    title: plain('Runbook'),
    blocks: [section('step 1')],
    ...fields,
  });

  it('accepts a modal of 100 blocks and refuses 101', () => {
    const blocks = (n: number) => Array.from({ length: n }, () => section('.'));
    expect(checkView(modal({ blocks: blocks(100) }))).toEqual({ ok: true });
    expect(checkView(modal({ blocks: blocks(101) }))).toEqual({
      ok: false,
      errors: ['must be no more than 100 items, got 101 [json-pointer:/view/blocks]'],
    });
  });

  it('limits the title and buttons to 24 characters of plain text', () => {
    expect(checkView(modal({ title: plain('x'.repeat(24)), submit: plain('y'.repeat(24)) }))).toEqual({
      ok: true,
    });
    expect(checkView(modal({ title: plain('x'.repeat(25)), close: mrkdwn('no') }))).toEqual({
      ok: false,
      errors: [
        'must be less than 25 characters, got 25 [json-pointer:/view/title/text]',
        'must be plain_text, got "mrkdwn" [json-pointer:/view/close/type]',
      ],
    });
  });

  it('needs no title on the home tab, and an object of a known type', () => {
    expect(checkView({ type: 'home', blocks: [section('hi')] })).toEqual({ ok: true });
    expect(checkView({ type: 'sheet', blocks: [] })).toMatchObject({ ok: false });
    expect(checkView('modal')).toEqual({
      ok: false,
      errors: ['must provide an object [json-pointer:/view]'],
    });
  });
});
