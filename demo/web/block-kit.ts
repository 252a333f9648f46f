import type { BlockAction, MessageInput, RenderOptions } from './block-kit-types.js';
import { type Block, type Inline, parseMrkdwn, parsePlainText, safeUrl } from './mrkdwn.js';
import { richTextToBlocks } from './rich-text.js';

export type { BlockAction, MessageInput, RenderOptions } from './block-kit-types.js';

/**
 * Block Kit as Slack draws it, for the demo page. Every string from a message reaches the DOM
 * through textContent, a text node or an attribute checked by safeUrl(): message text comes
 * from alerts and command output, so it is treated as hostile and never parsed as HTML.
 */

type Json = Readonly<Record<string, unknown>>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Json, key: string): string | undefined => (typeof o[key] === 'string' ? o[key] : undefined);
const list = (o: Json, key: string): readonly unknown[] => {
  const v = o[key];
  return Array.isArray(v) ? v : [];
};
const typeOf = (v: unknown): string => (isRecord(v) ? (str(v, 'type') ?? '(no type)') : '(not an object)');

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className !== undefined) node.className = className;
  node.append(...children);
  return node;
}

/** One message: author, time, then its blocks (or its text as mrkdwn when it has none). */
export function renderMessage(message: MessageInput, options: RenderOptions): HTMLElement {
  const author =
    message.username ?? (message.user ? (options.userName?.(message.user) ?? message.user) : 'okome');
  const meta = el('div', 'sk-meta', el('span', 'sk-author', author));
  const time = formatTs(message.ts);
  if (time !== undefined) {
    const t = el('time', 'sk-time', time.label);
    t.dateTime = time.iso;
    meta.append(t);
  }
  if (message.edited === true) meta.append(el('span', 'sk-edited', '(edited)'));

  const body = el('div', 'sk-blocks');
  const blocks = message.blocks ?? [];
  if (blocks.length > 0) body.append(...blocks.map((block, i) => renderBlock(block, i, options)));
  else if (message.text) body.append(renderMrkdwn(message.text, options));

  const root = el(
    'article',
    'sk-message',
    el('div', 'sk-avatar', author.trim().charAt(0).toUpperCase() || '?'),
    el('div', 'sk-content', meta, body),
  );
  if (message.ts) root.dataset.ts = message.ts;
  return root;
}

/** A thread as Slack's side panel draws it: the parent, a reply count, the replies. */
export function renderThread(
  parent: MessageInput,
  replies: readonly MessageInput[],
  options: RenderOptions,
): HTMLElement {
  const count = el(
    'div',
    'sk-reply-count',
    `${replies.length} ${replies.length === 1 ? 'reply' : 'replies'}`,
  );
  const list = el('div', 'sk-replies', ...replies.map((reply) => renderMessage(reply, options)));
  return el('section', 'sk-thread', renderMessage(parent, options), count, list);
}

/** mrkdwn text as Slack shows it (a message's `text`, an ephemeral reply). */
export function renderMrkdwn(text: string, options: RenderOptions): HTMLElement {
  return renderBlocksOf(parseMrkdwn(text), options);
}

function formatTs(ts: string | null | undefined): { label: string; iso: string } | undefined {
  const seconds = Number.parseFloat(ts ?? '');
  if (!Number.isFinite(seconds)) return undefined;
  const when = new Date(seconds * 1000);
  if (Number.isNaN(when.getTime())) return undefined;
  return {
    label: when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
    iso: when.toISOString(),
  };
}

function renderBlock(block: unknown, index: number, options: RenderOptions): HTMLElement {
  const node = renderKnownBlock(block, options) ?? unsupported(`unsupported block: ${typeOf(block)}`);
  node.classList.add('sk-block');
  node.dataset.blockIndex = String(index);
  if (isRecord(block)) {
    const blockId = str(block, 'block_id');
    if (blockId !== undefined) node.dataset.blockId = blockId;
  }
  return node;
}

function renderKnownBlock(block: unknown, options: RenderOptions): HTMLElement | undefined {
  if (!isRecord(block)) return undefined;
  const blockId = str(block, 'block_id');
  switch (block.type) {
    case 'section':
      return renderSection(block, blockId, options);
    case 'header': {
      const h = el('h2', 'sk-header');
      if (isRecord(block.text)) h.append(...inlinesToNodes(plainInlines(block.text), options));
      return h;
    }
    case 'context':
      return el(
        'div',
        'sk-context',
        ...list(block, 'elements').map((element) =>
          isRecord(element) && element.type === 'image'
            ? image(element, 'sk-context-image')
            : isRecord(element) && (element.type === 'mrkdwn' || element.type === 'plain_text')
              ? renderText(element, options, 'sk-context-text')
              : unsupported(`unsupported element: ${typeOf(element)}`),
        ),
      );
    case 'divider':
      return el('hr', 'sk-divider');
    case 'actions':
      return el(
        'div',
        'sk-actions',
        ...list(block, 'elements').map((element) => renderElement(element, blockId, options)),
      );
    case 'image': {
      const figure = el('figure', 'sk-image-block');
      if (isRecord(block.title))
        figure.append(el('figcaption', 'sk-image-title', ...plainNodes(block.title, options)));
      figure.append(image(block, 'sk-image'));
      return figure;
    }
    case 'rich_text':
      return el('div', 'sk-rich-text', renderBlocksOf(richTextToBlocks(list(block, 'elements')), options));
    default:
      return undefined;
  }
}

function renderSection(block: Json, blockId: string | undefined, options: RenderOptions): HTMLElement {
  const main = el('div', 'sk-section-main');
  if (isRecord(block.text)) main.append(renderText(block.text, options, 'sk-section-text'));
  const fields = list(block, 'fields');
  if (fields.length > 0)
    main.append(
      el(
        'div',
        'sk-fields',
        ...fields.map((field) =>
          isRecord(field) ? renderText(field, options, 'sk-field') : unsupported('unsupported field'),
        ),
      ),
    );
  const section = el('div', 'sk-section', main);
  if (block.accessory !== undefined) {
    const accessory = block.accessory;
    section.append(
      el(
        'div',
        'sk-accessory',
        isRecord(accessory) && accessory.type === 'image'
          ? image(accessory, 'sk-accessory-image')
          : renderElement(accessory, blockId, options),
      ),
    );
  }
  return section;
}

/** A text object: mrkdwn parsed, plain_text as it is (emoji read unless `emoji: false`). */
function renderText(text: Json, options: RenderOptions, className: string): HTMLElement {
  const node =
    text.type === 'mrkdwn'
      ? renderMrkdwn(str(text, 'text') ?? '', options)
      : el('div', 'sk-plain', ...plainNodes(text, options));
  node.classList.add(className);
  return node;
}

function plainInlines(text: Json): Inline[] {
  return parsePlainText(str(text, 'text') ?? '', text.emoji !== false);
}

function plainNodes(text: Json, options: RenderOptions): Node[] {
  return inlinesToNodes(plainInlines(text), options);
}

function renderElement(element: unknown, blockId: string | undefined, options: RenderOptions): HTMLElement {
  if (!isRecord(element)) return unsupported(`unsupported element: ${typeOf(element)}`);
  if (element.type === 'button') return renderButton(element, blockId, options);
  if (element.type === 'overflow') return renderOverflow(element, blockId, options);
  return unsupported(`unsupported element: ${typeOf(element)}`);
}

function action(element: Json, blockId: string | undefined, value: string | undefined): BlockAction {
  const actionId = str(element, 'action_id') ?? '';
  return {
    actionId,
    ...(value === undefined ? {} : { value }),
    ...(blockId === undefined ? {} : { blockId }),
  };
}

function styleClass(style: unknown): string {
  return style === 'primary' ? ' sk-primary' : style === 'danger' ? ' sk-danger' : '';
}

function renderButton(element: Json, blockId: string | undefined, options: RenderOptions): HTMLElement {
  const button = el('button', `sk-button${styleClass(element.style)}`);
  button.type = 'button';
  if (isRecord(element.text)) button.append(...plainNodes(element.text, options));
  const url = safeUrl(str(element, 'url') ?? '');
  if (url !== undefined) button.title = url;
  const fire = action(element, blockId, str(element, 'value'));
  button.addEventListener('click', () => {
    withConfirm(button, element.confirm, options, () => {
      // Slack opens a URL button's link and still sends the action.
      if (url !== undefined) window.open(url, '_blank', 'noopener,noreferrer');
      options.onAction(fire);
    });
  });
  return button;
}

/** The ⋯ menu: each option sends the overflow's action id with the option's value. */
function renderOverflow(element: Json, blockId: string | undefined, options: RenderOptions): HTMLElement {
  const wrap = el('div', 'sk-overflow');
  const toggle = el('button', 'sk-button sk-overflow-toggle', '⋯');
  toggle.type = 'button';
  toggle.setAttribute('aria-label', 'More actions');
  toggle.setAttribute('aria-haspopup', 'menu');
  const menu = el('div', 'sk-menu');
  menu.setAttribute('role', 'menu');
  menu.hidden = true;
  for (const option of list(element, 'options')) {
    if (!isRecord(option)) continue;
    const item = el('button', 'sk-menu-item');
    item.type = 'button';
    item.setAttribute('role', 'menuitem');
    if (isRecord(option.text)) item.append(...plainNodes(option.text, options));
    item.addEventListener('click', () => {
      menu.hidden = true;
      withConfirm(item, element.confirm, options, () =>
        options.onAction(action(element, blockId, str(option, 'value'))),
      );
    });
    menu.append(item);
  }
  toggle.addEventListener('click', () => {
    menu.hidden = !menu.hidden;
  });
  // Closes as Slack's does: when focus leaves the menu or on Escape.
  wrap.addEventListener('focusout', (event) => {
    if (!(event.relatedTarget instanceof Node && wrap.contains(event.relatedTarget))) menu.hidden = true;
  });
  wrap.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') menu.hidden = true;
  });
  wrap.append(toggle, menu);
  return wrap;
}

/**
 * Runs `proceed` at once, or, when the element has a confirm object, after its modal dialog is
 * confirmed: Cancel, Escape or closing the dialog runs nothing.
 */
function withConfirm(from: HTMLElement, confirm: unknown, options: RenderOptions, proceed: () => void): void {
  if (!isRecord(confirm)) {
    proceed();
    return;
  }
  const doc = from.ownerDocument;
  const dialog = el('dialog', 'sk-dialog');
  const title = el('h2', 'sk-dialog-title');
  if (isRecord(confirm.title)) title.append(...plainNodes(confirm.title, options));
  else title.append('Are you sure?');
  const body = isRecord(confirm.text)
    ? renderText(confirm.text, options, 'sk-dialog-text')
    : el('div', 'sk-dialog-text');
  const deny = el('button', 'sk-button sk-dialog-deny');
  deny.type = 'button';
  if (isRecord(confirm.deny)) deny.append(...plainNodes(confirm.deny, options));
  else deny.append('Cancel');
  const ok = el('button', `sk-button sk-dialog-confirm${styleClass(confirm.style) || ' sk-primary'}`);
  ok.type = 'button';
  if (isRecord(confirm.confirm)) ok.append(...plainNodes(confirm.confirm, options));
  else ok.append('Yes');
  let decided = false;
  deny.addEventListener('click', () => dialog.close());
  ok.addEventListener('click', () => {
    if (decided) return;
    decided = true;
    dialog.close();
    proceed();
  });
  dialog.addEventListener('close', () => dialog.remove());
  dialog.append(title, body, el('div', 'sk-dialog-buttons', deny, ok));
  doc.body.append(dialog);
  dialog.showModal();
  deny.focus();
}

function image(element: Json, className: string): HTMLElement {
  const alt = str(element, 'alt_text') ?? '';
  const url = safeUrl(str(element, 'image_url') ?? '');
  if (url === undefined || !url.startsWith('http')) return el('span', `${className} sk-image-missing`, alt);
  const img = el('img', className);
  img.alt = alt;
  img.src = url;
  img.loading = 'lazy';
  img.referrerPolicy = 'no-referrer';
  return img;
}

function unsupported(what: string): HTMLElement {
  return el('div', 'sk-unsupported', what);
}

function renderBlocksOf(blocks: readonly Block[], options: RenderOptions): HTMLElement {
  const root = el('div', 'sk-mrkdwn');
  for (const block of blocks) {
    switch (block.type) {
      case 'paragraph':
        root.append(el('div', 'sk-p', ...inlinesToNodes(block.children, options)));
        break;
      case 'preformatted':
        root.append(el('pre', 'sk-pre', ...inlinesToNodes(block.children, options)));
        break;
      case 'quote':
        root.append(el('blockquote', 'sk-quote', ...inlinesToNodes(block.children, options)));
        break;
      case 'list': {
        const ordered = block.style === 'ordered';
        const listEl = el(ordered ? 'ol' : 'ul', `sk-list sk-indent-${block.indent}`);
        if (ordered && block.offset > 0) (listEl as HTMLOListElement).start = block.offset + 1;
        for (const item of block.items) listEl.append(el('li', undefined, ...inlinesToNodes(item, options)));
        root.append(listEl);
        break;
      }
      case 'unsupported':
        root.append(unsupported(`unsupported element: ${block.what}`));
        break;
    }
  }
  return root;
}

function inlinesToNodes(nodes: readonly Inline[], options: RenderOptions): Node[] {
  return nodes.map((node) => inlineToNode(node, options));
}

function inlineToNode(node: Inline, options: RenderOptions): Node {
  switch (node.type) {
    case 'text':
      return document.createTextNode(node.text);
    case 'bold':
      return el('b', undefined, ...inlinesToNodes(node.children, options));
    case 'italic':
      return el('i', undefined, ...inlinesToNodes(node.children, options));
    case 'strike':
      return el('s', undefined, ...inlinesToNodes(node.children, options));
    case 'code':
      return el('code', 'sk-code', ...inlinesToNodes(node.children, options));
    case 'link': {
      const a = el('a', 'sk-link', node.text);
      a.href = node.url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      return a;
    }
    case 'user':
      return el('span', 'sk-mention', `@${options.userName?.(node.id) ?? node.label ?? node.id}`);
    case 'channel':
      return el('span', 'sk-mention', `#${options.channelName?.(node.id) ?? node.label ?? node.id}`);
    case 'usergroup':
      return el('span', 'sk-mention', node.label ?? `@${node.id}`);
    case 'broadcast':
      return el('span', 'sk-mention sk-broadcast', `@${node.range}`);
    case 'date':
      return el('span', 'sk-date', node.text);
    case 'emoji': {
      const span = el('span', node.unicode === undefined ? 'sk-emoji sk-emoji-unknown' : 'sk-emoji');
      span.textContent = node.unicode ?? `:${node.name}:`;
      span.title = `:${node.name}:`;
      return span;
    }
    case 'break':
      return el('br');
    case 'unsupported':
      return el('span', 'sk-unsupported', `unsupported element: ${node.what}`);
  }
}
