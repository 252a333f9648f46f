import { isMap, isScalar, isSeq, type Pair, parseDocument, type Scalar, type YAMLMap } from 'yaml';
import { ErrorCode, OkomeError } from '../errors.js';
import { HOST_KEY_PLACEHOLDER } from './deployment-check.js';
import { type LoadedConfig, parseConfig } from './load-config.js';

/**
 * Host-key pins as the operator wrote them, and their edit in place. yaml's Document finds each
 * node's `ssh.hostKey` and its byte range; the edit splices only that range, because
 * `Document.toString()` re-lays the whole file (moves comments, folds long lines, pads flow lists).
 */

/** A node's pin: a value written, the example's placeholder, or none at all. */
export type PinState =
  | { readonly kind: 'pinned'; readonly value: string }
  | { readonly kind: 'placeholder'; readonly value: string }
  | { readonly kind: 'missing' };

export interface NodePin {
  /** Index under `nodes:`. */
  readonly index: number;
  readonly state: PinState;
}

/** Where a node's pin goes in the text. */
type Slot =
  | { readonly kind: 'value'; readonly start: number; readonly end: number; readonly quote: string }
  | { readonly kind: 'empty'; readonly at: number }
  | { readonly kind: 'block'; readonly at: number; readonly indent: string }
  | { readonly kind: 'flow'; readonly at: number }
  | { readonly kind: 'none' };

interface Located extends NodePin {
  readonly slot: Slot;
}

function locate(text: string): Located[] | undefined {
  const doc = parseDocument(text, { uniqueKeys: false, logLevel: 'error', keepSourceTokens: false });
  if (doc.errors.length > 0) return undefined;
  const nodes = doc.get('nodes', true);
  if (!isSeq(nodes)) return [];
  return nodes.items.map((item, index): Located => {
    const ssh = isMap(item) ? item.get('ssh', true) : undefined;
    if (!isMap(ssh)) return { index, state: { kind: 'missing' }, slot: { kind: 'none' } };
    const pair = ssh.items.find((p) => isScalar(p.key) && p.key.value === 'hostKey');
    if (pair === undefined) return { index, state: { kind: 'missing' }, slot: insertionSlot(text, ssh) };
    return { index, ...pinOf(text, pair) };
  });
}

function pinOf(text: string, pair: Pair): { state: PinState; slot: Slot } {
  const value = pair.value;
  if (isScalar(value) && value.range != null && value.value !== null && value.value !== '') {
    const written = String(value.value);
    const quote = value.type === 'QUOTE_DOUBLE' ? '"' : value.type === 'QUOTE_SINGLE' ? "'" : '';
    return {
      state: HOST_KEY_PLACEHOLDER.test(written)
        ? { kind: 'placeholder', value: written }
        : { kind: 'pinned', value: written },
      slot: { kind: 'value', start: value.range[0], end: value.range[1], quote },
    };
  }
  // `hostKey:` with nothing after it: the value goes right after the colon.
  const keyEnd = isScalar(pair.key) ? (pair.key.range?.[1] ?? -1) : -1;
  const colon = keyEnd < 0 ? -1 : text.indexOf(':', keyEnd);
  return {
    state: { kind: 'missing' },
    slot:
      value == null || (isScalar(value) && (value.value === null || value.value === ''))
        ? emptySlot(colon)
        : { kind: 'none' },
  };
}

function emptySlot(colon: number): Slot {
  return colon < 0 ? { kind: 'none' } : { kind: 'empty', at: colon + 1 };
}

/** After the mapping's last entry: a new line at its keys' indentation, or before a flow map's `}`. */
function insertionSlot(text: string, ssh: YAMLMap): Slot {
  const range = ssh.range;
  if (range == null) return { kind: 'none' };
  if (ssh.flow === true) {
    const close = text.lastIndexOf('}', range[1] - 1);
    if (close < range[0]) return { kind: 'none' };
    let at = close;
    while (at > range[0] && /\s/.test(text[at - 1] ?? '')) at--;
    return { kind: 'flow', at };
  }
  const first = ssh.items[0]?.key as Scalar | undefined;
  const last = ssh.items.at(-1);
  const lastEnd =
    (last?.value as Scalar | undefined)?.range?.[1] ?? (last?.key as Scalar | undefined)?.range?.[1];
  if (first?.range == null || lastEnd === undefined) return { kind: 'none' };
  const lineStart = text.lastIndexOf('\n', first.range[0] - 1) + 1;
  const indent = text.slice(lineStart, first.range[0]);
  if (!/^[ ]*$/.test(indent)) return { kind: 'none' };
  const lineEnd = text.indexOf('\n', lastEnd);
  return { kind: 'block', at: lineEnd < 0 ? text.length : lineEnd, indent };
}

/** Each node's pin as written; undefined when the text is not YAML (parseConfig says why). */
export function readHostKeyPins(text: string): NodePin[] | undefined {
  return locate(text)?.map(({ index, state }) => ({ index, state }));
}

/**
 * The text with each given node's pin written (by index under `nodes:`), and nothing else
 * changed. Throws when a node's pin cannot be placed (no `ssh:` mapping to put it in).
 */
export function withHostKeys(text: string, keys: ReadonlyMap<number, string>): string {
  const located = locate(text);
  if (located === undefined)
    throw new OkomeError(ErrorCode.ConfigInvalid, 'the configuration is not valid YAML', { userSafe: true });
  const edits: Array<{ start: number; end: number; insert: string }> = [];
  for (const [index, fingerprint] of keys) {
    const slot = located[index]?.slot ?? { kind: 'none' };
    switch (slot.kind) {
      case 'value':
        edits.push({ start: slot.start, end: slot.end, insert: `${slot.quote}${fingerprint}${slot.quote}` });
        break;
      case 'empty':
        edits.push({ start: slot.at, end: slot.at, insert: ` ${fingerprint}` });
        break;
      case 'block':
        edits.push({ start: slot.at, end: slot.at, insert: `\n${slot.indent}hostKey: ${fingerprint}` });
        break;
      case 'flow':
        edits.push({ start: slot.at, end: slot.at, insert: `, hostKey: ${fingerprint}` });
        break;
      case 'none':
        throw new OkomeError(
          ErrorCode.ConfigInvalid,
          `nodes[${index}] has no ssh: mapping to write hostKey in. To resolve, add the node's ssh: block (see config/okome.example.yml).`,
          { userSafe: true },
        );
    }
  }
  // From the end, so earlier offsets stay valid.
  edits.sort((a, b) => b.start - a.start);
  let out = text;
  for (const e of edits) out = out.slice(0, e.start) + e.insert + out.slice(e.end);
  return out;
}

/** Stands in for a missing pin while the rest of the file is validated; never compared. */
const UNPINNED_STAND_IN = `SHA256:${'A'.repeat(43)}`;

/**
 * The configuration with unpinned nodes allowed (the schema requires a hostKey): every other
 * problem is still a ConfigError. Unpinned nodes carry a stand-in key: use `pins`, not it.
 */
export function parseConfigForPinning(
  text: string,
  file: string,
): { readonly config: LoadedConfig; readonly pins: readonly NodePin[] } {
  const located = locate(text);
  // Not YAML: parseConfig reports where.
  if (located === undefined) return { config: parseConfig(text, file), pins: [] };
  const standIns = new Map<number, string>();
  for (const node of located) {
    if (node.state.kind === 'missing' && node.slot.kind !== 'none')
      standIns.set(node.index, UNPINNED_STAND_IN);
  }
  const config = parseConfig(standIns.size === 0 ? text : withHostKeys(text, standIns), file);
  return { config, pins: located.map(({ index, state }) => ({ index, state })) };
}
