import { emojiFor } from './emoji.js';
import { type Block, type Inline, safeUrl } from './mrkdwn.js';

/**
 * A rich_text block's elements → the same tree mrkdwn parses to. Pure, like mrkdwn.ts. The
 * input is whatever arrived on the wire, so every field is checked before it is read.
 */

type Json = Readonly<Record<string, unknown>>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Json, key: string): string | undefined => (typeof o[key] === 'string' ? o[key] : undefined);
const list = (o: Json, key: string): readonly unknown[] => {
  const v = o[key];
  return Array.isArray(v) ? v : [];
};
const typeOf = (v: unknown): string => (isRecord(v) ? (str(v, 'type') ?? '(no type)') : '(not an object)');

export function richTextToBlocks(elements: readonly unknown[]): Block[] {
  return elements.map((element): Block => {
    if (!isRecord(element)) return { type: 'unsupported', what: typeOf(element) };
    const inner = list(element, 'elements');
    switch (element.type) {
      case 'rich_text_section':
        return { type: 'paragraph', children: sectionInlines(inner) };
      case 'rich_text_preformatted':
        return { type: 'preformatted', children: sectionInlines(inner) };
      case 'rich_text_quote':
        return { type: 'quote', children: sectionInlines(inner) };
      case 'rich_text_list': {
        const indent = typeof element.indent === 'number' ? element.indent : 0;
        const offset = typeof element.offset === 'number' ? element.offset : 0;
        return {
          type: 'list',
          style: element.style === 'ordered' ? 'ordered' : 'bullet',
          indent: Math.max(0, Math.min(8, Math.trunc(indent))),
          offset: Math.max(0, Math.trunc(offset)),
          items: inner.map((item) => (isRecord(item) ? sectionInlines(list(item, 'elements')) : [])),
        };
      }
      default:
        return { type: 'unsupported', what: typeOf(element) };
    }
  });
}

function sectionInlines(elements: readonly unknown[]): Inline[] {
  return elements.flatMap((element): Inline[] => {
    if (!isRecord(element)) return [{ type: 'unsupported', what: typeOf(element) }];
    const style = isRecord(element.style) ? element.style : {};
    switch (element.type) {
      case 'text':
        return styled(textWithBreaks(str(element, 'text') ?? ''), style);
      case 'link': {
        const url = safeUrl(str(element, 'url') ?? '');
        const text = str(element, 'text') ?? str(element, 'url') ?? '';
        return styled(url === undefined ? textWithBreaks(text) : [{ type: 'link', url, text }], style);
      }
      case 'user':
        return [{ type: 'user', id: str(element, 'user_id') ?? '', label: undefined }];
      case 'channel':
        return [{ type: 'channel', id: str(element, 'channel_id') ?? '', label: undefined }];
      case 'usergroup':
        return [{ type: 'usergroup', id: str(element, 'usergroup_id') ?? '', label: undefined }];
      case 'broadcast': {
        const range = str(element, 'range');
        return range === 'here' || range === 'channel' || range === 'everyone'
          ? [{ type: 'broadcast', range }]
          : [{ type: 'unsupported', what: `broadcast ${range ?? ''}`.trim() }];
      }
      case 'emoji': {
        const name = str(element, 'name') ?? '';
        return [{ type: 'emoji', name, unicode: emojiFor(name) ?? fromCodePoints(str(element, 'unicode')) }];
      }
      case 'date': {
        const seconds = typeof element.timestamp === 'number' ? element.timestamp : Number.NaN;
        const when = new Date(seconds * 1000);
        const text = str(element, 'fallback') ?? (Number.isNaN(when.getTime()) ? '' : when.toISOString());
        return [{ type: 'date', text }];
      }
      case 'color':
        return [{ type: 'text', text: str(element, 'value') ?? '' }];
      default:
        return [{ type: 'unsupported', what: typeOf(element) }];
    }
  });
}

function textWithBreaks(text: string): Inline[] {
  const out: Inline[] = [];
  text.split('\n').forEach((part, i) => {
    if (i > 0) out.push({ type: 'break' });
    if (part !== '') out.push({ type: 'text', text: part });
  });
  return out;
}

/** Code innermost, as Slack draws it: bold italic struck code. */
function styled(children: Inline[], style: Json): Inline[] {
  let nodes: Inline[] = children;
  if (style.code === true) nodes = [{ type: 'code', children: nodes }];
  if (style.strike === true) nodes = [{ type: 'strike', children: nodes }];
  if (style.italic === true) nodes = [{ type: 'italic', children: nodes }];
  if (style.bold === true) nodes = [{ type: 'bold', children: nodes }];
  return nodes;
}

/** `1f44d` or `1f1ef-1f1f5` → the characters; undefined when it is not valid hex code points. */
function fromCodePoints(hex: string | undefined): string | undefined {
  if (hex === undefined || !/^[0-9a-f]{1,6}(?:-[0-9a-f]{1,6})*$/i.test(hex)) return undefined;
  const points = hex.split('-').map((h) => Number.parseInt(h, 16));
  return points.every((p) => p <= 0x10ffff) ? String.fromCodePoint(...points) : undefined;
}
