import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Block,
  decodeEntities,
  type Inline,
  parseMrkdwn,
  parsePlainText,
  safeUrl,
} from '../../demo/web/mrkdwn.js';
import { richTextToBlocks } from '../../demo/web/rich-text.js';
import { escapeText } from '../../src/slack/render/mrkdwn.js';

/** The demo page's mrkdwn parser (pure): what Slack shows for the text the bot sends. */

const text = (t: string): Inline => ({ type: 'text', text: t });
const para = (...children: Inline[]): Block => ({ type: 'paragraph', children });
const one = (source: string): readonly Inline[] => {
  const blocks = parseMrkdwn(source);
  expect(blocks).toHaveLength(1);
  const first = blocks[0];
  if (first === undefined || first.type === 'list' || first.type === 'unsupported')
    throw new Error('not inline');
  return first.children;
};

/** Every node in a tree, depth first. */
function walk(nodes: readonly Inline[]): Inline[] {
  return nodes.flatMap((n) => ('children' in n ? [n, ...walk(n.children)] : [n]));
}
function nodesOf(blocks: readonly Block[]): Inline[] {
  return blocks.flatMap((b) =>
    b.type === 'list' ? b.items.flatMap(walk) : b.type === 'unsupported' ? [] : walk(b.children),
  );
}
/** The visible text, as the page would show it (emoji as their shortcode). */
function visible(nodes: readonly Inline[]): string {
  return nodes
    .map((n) => {
      switch (n.type) {
        case 'text':
        case 'date':
          return n.text;
        case 'link':
          return n.text;
        case 'break':
          return '\n';
        case 'emoji':
          return `:${n.name}:`;
        case 'user':
        case 'channel':
        case 'usergroup':
          return `<${n.id}>`;
        case 'broadcast':
          return `@${n.range}`;
        case 'unsupported':
          return '?';
        default:
          return visible(n.children);
      }
    })
    .join('');
}

describe('mrkdwn: inline formatting', () => {
  it('reads bold, italic, strike and code, nested too', () => {
    expect(one('*bold* _it_ ~gone~ `x`')).toEqual([
      { type: 'bold', children: [text('bold')] },
      text(' '),
      { type: 'italic', children: [text('it')] },
      text(' '),
      { type: 'strike', children: [text('gone')] },
      text(' '),
      { type: 'code', children: [text('x')] },
    ]);
    expect(one('*_both_*')).toEqual([
      { type: 'bold', children: [{ type: 'italic', children: [text('both')] }] },
    ]);
  });

  it('needs word boundaries: snake_case_names, 2*3*4 and "* not bold *" stay as they are', () => {
    expect(one('ap_aaaa_bbb')).toEqual([text('ap_aaaa_bbb')]);
    expect(one('2*3*4')).toEqual([text('2*3*4')]);
    expect(one('* not bold *')).toEqual([text('* not bold *')]);
    expect(one('*unclosed')).toEqual([text('*unclosed')]);
    expect(one('(*yes*)')).toEqual([text('('), { type: 'bold', children: [text('yes')] }, text(')')]);
  });

  it('keeps code literal: no formatting, emoji or autolink inside, entities decoded', () => {
    expect(one('`/api/* _a_ :x: a &amp;&amp; b`')).toEqual([
      { type: 'code', children: [text('/api/* _a_ :x: a && b')] },
    ]);
    // A closer inside a code span does not close the bold around it.
    expect(one('*run `a*b` now*')).toEqual([
      { type: 'bold', children: [text('run '), { type: 'code', children: [text('a*b')] }, text(' now')] },
    ]);
  });

  it('decodes exactly &amp; &lt; &gt;, once', () => {
    expect(one('&lt;check-id&gt; &amp;lt; &quot;')).toEqual([text('<check-id> &lt; &quot;')]);
    expect(decodeEntities('&amp;amp;')).toBe('&amp;');
  });

  it('reads emoji shortcodes, known or not, but not times', () => {
    expect(one(':white_check_mark: at 03:14:07 :no_such_emoji:')).toEqual([
      { type: 'emoji', name: 'white_check_mark', unicode: '✅' },
      text(' at 03:14:07 '),
      { type: 'emoji', name: 'no_such_emoji', unicode: undefined },
    ]);
  });

  it('reads mentions, channels, broadcasts, user groups, dates and links', () => {
    expect(
      one(
        '<@U0APPROVER1> <#C123|ops> <!here> <!subteam^S1|@oncall> <!date^0^{date}|then> <https://x.test/a?b=1&amp;c=2|docs>',
      ),
    ).toEqual([
      { type: 'user', id: 'U0APPROVER1', label: undefined },
      text(' '),
      { type: 'channel', id: 'C123', label: 'ops' },
      text(' '),
      { type: 'broadcast', range: 'here' },
      text(' '),
      { type: 'usergroup', id: 'S1', label: '@oncall' },
      text(' '),
      { type: 'date', text: 'then' },
      text(' '),
      { type: 'link', url: 'https://x.test/a?b=1&c=2', text: 'docs' },
    ]);
  });

  it('links bare http(s) URLs, leaving trailing punctuation out', () => {
    expect(one('GET http://10.86.0.25:8000/health: refused (see https://x.test/a).')).toEqual([
      text('GET '),
      { type: 'link', url: 'http://10.86.0.25:8000/health', text: 'http://10.86.0.25:8000/health' },
      text(': refused (see '),
      { type: 'link', url: 'https://x.test/a', text: 'https://x.test/a' },
      text(').'),
    ]);
  });
});

describe('mrkdwn: blocks', () => {
  it('splits lines with breaks and reads a code block after text', () => {
    expect(parseMrkdwn('*Verification* (1 attempt)\n```nginx active\nVIP answers 200```')).toEqual([
      para({ type: 'bold', children: [text('Verification')] }, text(' (1 attempt)')),
      {
        type: 'preformatted',
        children: [text('nginx active'), { type: 'break' }, text('VIP answers 200')],
      },
    ]);
  });

  it('keeps a code block literal and text after it', () => {
    expect(parseMrkdwn('```\n*a* <@U1> &lt;b&gt;\n```\nafter')).toEqual([
      {
        type: 'preformatted',
        children: [text('*a* '), { type: 'user', id: 'U1', label: undefined }, text(' <b>')],
      },
      para(text('after')),
    ]);
    expect(parseMrkdwn('``` never closed')).toEqual([para(text('``` never closed'))]);
  });

  it('reads > and &gt; quote lines, and >>> for the rest', () => {
    expect(parseMrkdwn('said:\n&gt; one\n> two\nback')).toEqual([
      para(text('said:')),
      { type: 'quote', children: [text('one'), { type: 'break' }, text('two')] },
      para(text('back')),
    ]);
    expect(parseMrkdwn('a\n>>> b\nc')).toEqual([
      para(text('a')),
      { type: 'quote', children: [text('b'), { type: 'break' }, text('c')] },
    ]);
  });
});

describe('mrkdwn: hostile text stays text', () => {
  it('an unescaped <img onerror> or <script> is no token: its characters are kept as text', () => {
    const source = '<img src=x onerror=alert(1)> and <script>alert(1)</script>';
    const nodes = nodesOf(parseMrkdwn(source));
    expect(nodes.every((n) => n.type === 'text')).toBe(true);
    expect(visible(nodes)).toBe(source);
  });

  it('javascript:, data: and file: links lose their link and keep their label', () => {
    expect(one('<javascript:alert(1)|click> <data:text/html,x> <file:///etc/passwd|f>')).toEqual([
      text('click data:text/html,x f'),
    ]);
    expect(safeUrl(' JavaScript:alert(1)')).toBeUndefined();
    expect(safeUrl('https://ok.test/')).toBe('https://ok.test/');
    expect(safeUrl('mailto:a@b.test')).toBe('mailto:a@b.test');
  });

  it('text the bot escaped never becomes a mention, broadcast, date or non-http link', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (outside) => {
        const nodes = nodesOf(parseMrkdwn(escapeText(outside)));
        for (const n of nodes) {
          expect(['user', 'channel', 'usergroup', 'broadcast', 'date']).not.toContain(n.type);
          if (n.type === 'link') expect(n.url).toMatch(/^https?:/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('escaped text with no markup characters comes back exactly', () => {
    const plain = fc.string({
      unit: fc.constantFrom('a', 'Z', '0', ' ', '<', '>', '&', ';', '-', 'é', '🙂'),
      maxLength: 60,
    });
    fc.assert(
      fc.property(plain, (outside) => {
        fc.pre(!/^\s*>/.test(outside));
        expect(visible(nodesOf(parseMrkdwn(escapeText(outside))))).toBe(outside);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('plain_text', () => {
  it('decodes entities and reads emoji unless emoji is false; nothing else', () => {
    expect(parsePlainText(':white_check_mark: *a* &lt;b&gt;')).toEqual([
      { type: 'emoji', name: 'white_check_mark', unicode: '✅' },
      text(' *a* <b>'),
    ]);
    expect(parsePlainText(':x: a', false)).toEqual([text(':x: a')]);
  });
});

describe('rich_text', () => {
  it('turns sections, styles, lists, quotes and code blocks into the same tree', () => {
    const blocks = richTextToBlocks([
      {
        type: 'rich_text_section',
        elements: [
          { type: 'text', text: 'hi ', style: { bold: true } },
          { type: 'user', user_id: 'U1' },
          { type: 'emoji', name: 'rice' },
          { type: 'link', url: 'javascript:alert(1)', text: 'bad' },
        ],
      },
      {
        type: 'rich_text_list',
        style: 'ordered',
        indent: 1,
        elements: [{ type: 'rich_text_section', elements: [{ type: 'text', text: 'one' }] }],
      },
      { type: 'rich_text_quote', elements: [{ type: 'text', text: 'q\nr' }] },
      { type: 'rich_text_preformatted', elements: [{ type: 'text', text: 'x', style: { code: true } }] },
      { type: 'rich_text_hologram' },
    ]);
    expect(blocks).toEqual([
      para(
        { type: 'bold', children: [text('hi ')] },
        { type: 'user', id: 'U1', label: undefined },
        { type: 'emoji', name: 'rice', unicode: '🍚' },
        text('bad'),
      ),
      { type: 'list', style: 'ordered', indent: 1, offset: 0, items: [[text('one')]] },
      { type: 'quote', children: [text('q'), { type: 'break' }, text('r')] },
      { type: 'preformatted', children: [{ type: 'code', children: [text('x')] }] },
      { type: 'unsupported', what: 'rich_text_hologram' },
    ]);
  });
});

describe('the web renderer', () => {
  it('never parses HTML: no innerHTML, outerHTML, insertAdjacentHTML or document.write in demo/web', () => {
    const dir = join(import.meta.dirname, '../../demo/web');
    const offenders = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) =>
        /\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment)\b/.test(
          readFileSync(join(dir, f), 'utf8'),
        ),
      );
    expect(offenders).toEqual([]);
  });
});
