// Pure Block Kit validation with Slack's published limits. Errors mimic Slack's wording:
// "<problem> [json-pointer:/blocks/0/text/text]", so a failing test points at the offending field.

export const BLOCK_KIT_LIMITS = {
  messageBlocks: 50,
  viewBlocks: 100,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  headerText: 150,
  contextElements: 10,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  buttonUrl: 3000,
  actionId: 255,
  blockId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  imageAltText: 2000,
  inputLabel: 2000,
  viewTitle: 24,
  viewButton: 24,
  viewPrivateMetadata: 3000,
  viewCallbackId: 255,
  /** Above this Slack refuses the message (msg_too_long). */
  messageTextMax: 40_000,
  /** Above this Slack advises against the text; we record a warning. */
  messageTextAdvised: 4000,
} as const;

export type MessageVerdict =
  | { readonly ok: true; readonly warnings: string[] }
  | {
      readonly ok: false;
      readonly error: 'invalid_blocks' | 'invalid_blocks_format' | 'msg_too_long';
      readonly errors: string[];
      readonly warnings: string[];
    };

export type ViewVerdict = { readonly ok: true } | { readonly ok: false; readonly errors: string[] };

const BLOCK_TYPES = new Set([
  'actions',
  'context',
  'context_actions',
  'divider',
  'file',
  'header',
  'image',
  'input',
  'markdown',
  'rich_text',
  'section',
  'table',
  'video',
]);
const BUTTON_STYLES = new Set(['primary', 'danger']);

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Slack counts characters, not UTF-16 code units. */
function charCount(text: string): number {
  return [...text].length;
}

/** Checks a message as chat.postMessage / chat.update / chat.postEphemeral / response_url would. */
export function checkMessage(message: {
  readonly text?: unknown;
  readonly blocks?: unknown;
}): MessageVerdict {
  const warnings: string[] = [];
  const { text, blocks } = message;
  if (typeof text === 'string') {
    const length = charCount(text);
    if (length > BLOCK_KIT_LIMITS.messageTextMax) {
      return {
        ok: false,
        error: 'msg_too_long',
        errors: [
          `text is ${length} characters, more than ${BLOCK_KIT_LIMITS.messageTextMax} [json-pointer:/text]`,
        ],
        warnings,
      };
    }
    if (length > BLOCK_KIT_LIMITS.messageTextAdvised) {
      warnings.push(
        `text is ${length} characters; Slack advises at most ${BLOCK_KIT_LIMITS.messageTextAdvised} [json-pointer:/text]`,
      );
    }
  }
  if (blocks === undefined) return { ok: true, warnings };
  if (!Array.isArray(blocks)) {
    return {
      ok: false,
      error: 'invalid_blocks_format',
      errors: ['must be an array [json-pointer:/blocks]'],
      warnings,
    };
  }
  const walker = new BlockWalker();
  walker.blocks(blocks, '/blocks', BLOCK_KIT_LIMITS.messageBlocks);
  if (walker.errors.length > 0)
    return { ok: false, error: 'invalid_blocks', errors: walker.errors, warnings };
  return { ok: true, warnings };
}

/** Checks a view as views.open would (modal or home tab). */
export function checkView(view: unknown): ViewVerdict {
  const walker = new BlockWalker();
  walker.view(view, '/view');
  return walker.errors.length > 0 ? { ok: false, errors: walker.errors } : { ok: true };
}

class BlockWalker {
  readonly errors: string[] = [];
  readonly #actionIds = new Map<string, string>();
  readonly #blockIds = new Map<string, string>();

  view(view: unknown, path: string): void {
    if (!isRecord(view)) {
      this.#fail(path, 'must provide an object');
      return;
    }
    const { type } = view;
    if (type !== 'modal' && type !== 'home') {
      this.#fail(`${path}/type`, `must be 'modal' or 'home', got ${JSON.stringify(type)}`);
      return;
    }
    if (type === 'modal') {
      this.#text(view.title, `${path}/title`, BLOCK_KIT_LIMITS.viewTitle, { plainOnly: true });
      for (const key of ['submit', 'close'] as const) {
        if (view[key] !== undefined) {
          this.#text(view[key], `${path}/${key}`, BLOCK_KIT_LIMITS.viewButton, { plainOnly: true });
        }
      }
    }
    this.#optionalString(
      view.private_metadata,
      `${path}/private_metadata`,
      BLOCK_KIT_LIMITS.viewPrivateMetadata,
    );
    this.#optionalString(view.callback_id, `${path}/callback_id`, BLOCK_KIT_LIMITS.viewCallbackId);
    if (!Array.isArray(view.blocks)) {
      this.#fail(`${path}/blocks`, 'must be an array');
      return;
    }
    this.blocks(view.blocks, `${path}/blocks`, BLOCK_KIT_LIMITS.viewBlocks);
  }

  blocks(blocks: readonly unknown[], path: string, max: number): void {
    if (blocks.length > max) this.#fail(path, `must be no more than ${max} items, got ${blocks.length}`);
    blocks.forEach((block, index) => {
      this.#block(block, `${path}/${index}`);
    });
  }

  #block(block: unknown, path: string): void {
    if (!isRecord(block)) {
      this.#fail(path, 'must provide an object');
      return;
    }
    if (block.block_id !== undefined)
      this.#id(block.block_id, `${path}/block_id`, this.#blockIds, 'block_id');
    const { type } = block;
    if (typeof type !== 'string' || !BLOCK_TYPES.has(type)) {
      this.#fail(`${path}/type`, `unsupported block type ${JSON.stringify(type)}`);
      return;
    }
    switch (type) {
      case 'section':
        this.#section(block, path);
        break;
      case 'header':
        this.#text(block.text, `${path}/text`, BLOCK_KIT_LIMITS.headerText, { plainOnly: true });
        break;
      case 'context':
        this.#elements(
          block.elements,
          `${path}/elements`,
          BLOCK_KIT_LIMITS.contextElements,
          (element, at) => {
            if (isRecord(element) && element.type === 'image') this.#image(element, at);
            else this.#text(element, at, BLOCK_KIT_LIMITS.sectionText);
          },
        );
        break;
      case 'actions':
        this.#elements(block.elements, `${path}/elements`, BLOCK_KIT_LIMITS.actionsElements, (element, at) =>
          this.#element(element, at),
        );
        break;
      case 'image':
        this.#image(block, path);
        break;
      case 'input':
        this.#text(block.label, `${path}/label`, BLOCK_KIT_LIMITS.inputLabel, { plainOnly: true });
        this.#element(block.element, `${path}/element`);
        break;
      default:
        // divider, rich_text, markdown, file, video, table: no limit this bot can hit.
        break;
    }
  }

  #section(block: Record<string, unknown>, path: string): void {
    if (block.text === undefined && block.fields === undefined) {
      this.#fail(path, 'must provide either text or fields');
    }
    if (block.text !== undefined) this.#text(block.text, `${path}/text`, BLOCK_KIT_LIMITS.sectionText);
    if (block.fields !== undefined) {
      this.#elements(block.fields, `${path}/fields`, BLOCK_KIT_LIMITS.sectionFields, (field, at) =>
        this.#text(field, at, BLOCK_KIT_LIMITS.fieldText),
      );
    }
    if (block.accessory !== undefined) this.#element(block.accessory, `${path}/accessory`);
  }

  #elements(
    elements: unknown,
    path: string,
    max: number,
    check: (element: unknown, path: string) => void,
  ): void {
    if (!Array.isArray(elements)) {
      this.#fail(path, 'must be an array');
      return;
    }
    if (elements.length === 0) this.#fail(path, 'must provide at least 1 item');
    if (elements.length > max) this.#fail(path, `must be no more than ${max} items, got ${elements.length}`);
    elements.forEach((element, index) => {
      check(element, `${path}/${index}`);
    });
  }

  #element(element: unknown, path: string): void {
    if (!isRecord(element) || typeof element.type !== 'string') {
      this.#fail(path, 'must provide an element object with a type');
      return;
    }
    if (element.action_id !== undefined) {
      this.#id(element.action_id, `${path}/action_id`, this.#actionIds, 'action_id');
    }
    if (element.confirm !== undefined) this.#confirm(element.confirm, `${path}/confirm`);
    if (element.type === 'image') {
      this.#image(element, path);
      return;
    }
    if (element.type !== 'button') return;
    this.#text(element.text, `${path}/text`, BLOCK_KIT_LIMITS.buttonText, { plainOnly: true });
    this.#optionalString(element.value, `${path}/value`, BLOCK_KIT_LIMITS.buttonValue);
    this.#optionalString(element.url, `${path}/url`, BLOCK_KIT_LIMITS.buttonUrl);
    if (
      element.style !== undefined &&
      (typeof element.style !== 'string' || !BUTTON_STYLES.has(element.style))
    ) {
      this.#fail(`${path}/style`, `must be 'primary' or 'danger', got ${JSON.stringify(element.style)}`);
    }
  }

  #confirm(confirm: unknown, path: string): void {
    if (!isRecord(confirm)) {
      this.#fail(path, 'must provide an object');
      return;
    }
    this.#text(confirm.title, `${path}/title`, BLOCK_KIT_LIMITS.confirmTitle, { plainOnly: true });
    this.#text(confirm.text, `${path}/text`, BLOCK_KIT_LIMITS.confirmText);
    this.#text(confirm.confirm, `${path}/confirm`, BLOCK_KIT_LIMITS.confirmButton, { plainOnly: true });
    this.#text(confirm.deny, `${path}/deny`, BLOCK_KIT_LIMITS.confirmButton, { plainOnly: true });
  }

  #image(image: Record<string, unknown>, path: string): void {
    if (typeof image.alt_text !== 'string') {
      this.#fail(`${path}/alt_text`, 'must provide a string');
      return;
    }
    this.#optionalString(image.alt_text, `${path}/alt_text`, BLOCK_KIT_LIMITS.imageAltText);
  }

  #text(value: unknown, path: string, max: number, options: { plainOnly?: boolean } = {}): void {
    if (!isRecord(value)) {
      this.#fail(path, 'must provide a text object');
      return;
    }
    const allowed = options.plainOnly === true ? ['plain_text'] : ['plain_text', 'mrkdwn'];
    if (typeof value.type !== 'string' || !allowed.includes(value.type)) {
      this.#fail(`${path}/type`, `must be ${allowed.join(' or ')}, got ${JSON.stringify(value.type)}`);
    }
    if (typeof value.text !== 'string') {
      this.#fail(`${path}/text`, 'must provide a string');
      return;
    }
    const length = charCount(value.text);
    if (length === 0) this.#fail(`${path}/text`, 'must be more than 0 characters');
    if (length > max) this.#fail(`${path}/text`, `must be less than ${max + 1} characters, got ${length}`);
  }

  #optionalString(value: unknown, path: string, max: number): void {
    if (value === undefined) return;
    if (typeof value !== 'string') {
      this.#fail(path, 'must provide a string');
      return;
    }
    const length = charCount(value);
    if (length > max) this.#fail(path, `must be less than ${max + 1} characters, got ${length}`);
  }

  #id(value: unknown, path: string, seen: Map<string, string>, name: 'action_id' | 'block_id'): void {
    this.#optionalString(
      value,
      path,
      name === 'action_id' ? BLOCK_KIT_LIMITS.actionId : BLOCK_KIT_LIMITS.blockId,
    );
    if (typeof value !== 'string') return;
    const first = seen.get(value);
    if (first !== undefined) {
      this.#fail(path, `duplicate ${name} ${JSON.stringify(value)}, first used at ${first}`);
      return;
    }
    seen.set(value, path);
  }

  #fail(path: string, problem: string): void {
    this.errors.push(`${problem} [json-pointer:${path}]`);
  }
}
