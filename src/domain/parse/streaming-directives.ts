import { type NginxDirective, parseNginxDump } from './nginx-config.js';
import { createIncludeExpander } from './nginx-includes.js';
import { type Unknown, unknown } from './result.js';

/** What incident 5b asks of every API/stream location (runbook, "Streaming slow"). */
export const streamingDirectives = [
  'proxy_buffering',
  'proxy_request_buffering',
  'proxy_read_timeout',
  'proxy_send_timeout',
] as const;
export type StreamingDirective = (typeof streamingDirectives)[number];

/** The runbook's 600s; longer is as good. */
export const MIN_STREAM_TIMEOUT_MS = 600_000;

export interface EffectiveDirective {
  /** The value in force, as written; null when nginx's default applies (buffering on, 60s). */
  readonly value: string | null;
  /** Where it was set: this location, an enclosing location, the server, http, or nowhere. */
  readonly from: 'location' | 'enclosing-location' | 'server' | 'http' | 'default';
  readonly file: string | null;
  readonly line: number | null;
  readonly ok: boolean;
}

export interface StreamingLocation {
  /** The location's URI or regex, without its modifier. */
  readonly path: string;
  /** `=`, `^~`, `~`, `~*`, or null for a plain prefix. */
  readonly modifier: string | null;
  /** The server's `server_name` (or `listen`), to tell servers apart. */
  readonly server: string | null;
  readonly file: string;
  readonly line: number;
  readonly directives: Readonly<Record<StreamingDirective, EffectiveDirective>>;
  /** The directives not in force with the required value. */
  readonly missing: readonly StreamingDirective[];
}

export interface StreamingCheck {
  readonly kind: 'streaming';
  readonly locations: readonly StreamingLocation[];
  readonly ok: boolean;
  readonly warnings: readonly string[];
}

export type StreamingResult = StreamingCheck | Unknown;

type Setting = {
  readonly value: string;
  readonly from: EffectiveDirective['from'];
  readonly file: string;
  readonly line: number;
};
type Settings = Partial<Record<StreamingDirective, Setting>>;

const STREAMING: ReadonlySet<string> = new Set(streamingDirectives);
const isStreamingDirective = (name: string): name is StreamingDirective => STREAMING.has(name);
const MODIFIERS = ['^~', '~*', '=', '~'] as const;
const MAX_LOCATION_DEPTH = 64;

/**
 * Reads `nginx -T` and reports, for each location whose path mentions `/api` or `stream`,
 * which of the four streaming directives are not in force there. nginx inheritance applies:
 * http → server → location → nested location, the innermost setting winning; settings inside
 * `if` blocks are conditional and not counted.
 */
export function parseStreamingDirectives(nginxT: string): StreamingResult {
  const dump = parseNginxDump(nginxT);
  if (dump.kind === 'unknown') return dump;
  const includes = createIncludeExpander(dump);
  const locations: StreamingLocation[] = [];
  const warnings: string[] = [];
  let servers = 0;
  let httpSettings: Settings | null = null;
  let failure: string | null = null;

  const visitLocation = (
    d: NginxDirective,
    inherited: Settings,
    server: string | null,
    depth: number,
  ): void => {
    if (depth > MAX_LOCATION_DEPTH) {
      failure ??= `locations nested deeper than ${MAX_LOCATION_DEPTH} at ${d.file}:${d.line}`;
      return;
    }
    const body = includes.expand(d.block ?? []);
    const settings = { ...inherit(inherited, 'enclosing-location'), ...ownSettings(body, 'location') };
    const { modifier, path } = locationPath(d.args);
    if (/\/api|stream/i.test(path)) {
      locations.push(judge(path, modifier, server, d, settings));
    }
    for (const inner of body) {
      if (inner.name === 'location' && inner.block) visitLocation(inner, settings, server, depth + 1);
    }
  };

  const visitServer = (block: readonly NginxDirective[], inherited: Settings): void => {
    servers++;
    const body = includes.expand(block);
    const settings = { ...inherited, ...ownSettings(body, 'server') };
    const named = body.find((x) => x.name === 'server_name') ?? body.find((x) => x.name === 'listen');
    const server = named && named.args.length > 0 ? named.args.join(' ') : null;
    for (const d of body) {
      if (d.name === 'location' && d.block) visitLocation(d, settings, server, 1);
    }
  };

  const visitHttp = (block: readonly NginxDirective[]): void => {
    const body = includes.expand(block);
    const settings = ownSettings(body, 'http');
    httpSettings ??= settings;
    for (const d of body) {
      if (d.name === 'server' && d.block) visitServer(d.block, settings);
    }
  };

  const top = includes.expand(dump.files[0]?.directives ?? []);
  for (const d of top) {
    if (d.name === 'http' && d.block) visitHttp(d.block);
  }
  // Server blocks outside any http block: a sites file given on its own, or a file no include
  // names. Judge them as if inside the (first) http block, and say so.
  const strays: { path: string; directives: readonly NginxDirective[] }[] = [];
  if (httpSettings === null) strays.push({ path: dump.files[0]?.path ?? '', directives: top });
  const included = includes.includedAnywhere();
  for (const file of dump.files.slice(1)) {
    if (!included.has(file.path)) strays.push(file);
  }
  for (const stray of strays) {
    const serverBlocks = stray.directives.filter((d) => d.name === 'server' && d.block);
    if (serverBlocks.length === 0) continue;
    warnings.push(
      `server blocks in ${stray.path} are outside any http block; judged with the http settings found`,
    );
    for (const d of serverBlocks) visitServer(d.block ?? [], httpSettings ?? {});
  }

  failure ??= includes.failure;
  if (failure !== null) return unknown(`nginx configuration too large to judge: ${failure}`);
  if (httpSettings === null && servers === 0)
    return unknown('no http or server block in the nginx configuration');
  if (locations.length === 0) {
    return unknown(`no API/stream location (a path containing /api or stream) in ${servers} server block(s)`);
  }
  return {
    kind: 'streaming',
    locations,
    ok: locations.every((l) => l.missing.length === 0),
    warnings: [...includes.warnings, ...warnings],
  };
}

function ownSettings(body: readonly NginxDirective[], from: Setting['from']): Settings {
  const settings: Settings = {};
  for (const d of body) {
    // nginx refuses a duplicate of these in one block; if one slips through, the last is kept.
    if (d.block === null && isStreamingDirective(d.name)) {
      settings[d.name] = { value: d.args.join(' '), from, file: d.file, line: d.line };
    }
  }
  return settings;
}

function inherit(settings: Settings, from: Setting['from']): Settings {
  const out: Settings = {};
  for (const name of streamingDirectives) {
    const s = settings[name];
    if (s) out[name] = s.from === 'location' ? { ...s, from } : s;
  }
  return out;
}

function locationPath(args: readonly string[]): { modifier: string | null; path: string } {
  const [first = '', second] = args;
  if (second !== undefined) return { modifier: first, path: second };
  // nginx also accepts the modifier glued to the URI: `location ~^/api/`.
  for (const m of MODIFIERS) {
    if (first.startsWith(m) && first.length > m.length) return { modifier: m, path: first.slice(m.length) };
  }
  return { modifier: null, path: first };
}

function judge(
  path: string,
  modifier: string | null,
  server: string | null,
  d: NginxDirective,
  settings: Settings,
): StreamingLocation {
  const effective = (name: StreamingDirective): EffectiveDirective => {
    const s = settings[name];
    return s
      ? { value: s.value, from: s.from, file: s.file, line: s.line, ok: satisfies(name, s.value) }
      : { value: null, from: 'default', file: null, line: null, ok: false };
  };
  const directives: Record<StreamingDirective, EffectiveDirective> = {
    proxy_buffering: effective('proxy_buffering'),
    proxy_request_buffering: effective('proxy_request_buffering'),
    proxy_read_timeout: effective('proxy_read_timeout'),
    proxy_send_timeout: effective('proxy_send_timeout'),
  };
  const missing = streamingDirectives.filter((name) => !directives[name].ok);
  return { path, modifier, server, file: d.file, line: d.line, directives, missing };
}

function satisfies(name: StreamingDirective, value: string): boolean {
  if (name === 'proxy_buffering' || name === 'proxy_request_buffering') return value.toLowerCase() === 'off';
  const ms = parseNginxDurationMs(value);
  return ms !== null && ms >= MIN_STREAM_TIMEOUT_MS;
}

// ngx_parse_time: parts in strictly decreasing units, spaces allowed between them, a bare
// number means seconds; the result must fit nginx's msec type (2^31 − 1 ms).
const UNIT_MS: ReadonlyArray<readonly [string, number]> = [
  ['y', 365 * 86_400_000],
  ['M', 30 * 86_400_000],
  ['w', 7 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['ms', 1],
  ['m', 60_000],
  ['s', 1000],
];
const MAX_MSEC = 2 ** 31 - 1;

/** nginx time value (`600s`, `10m`, `1h 30m`, `900`) in milliseconds; null if nginx would refuse it. */
export function parseNginxDurationMs(text: string): number | null {
  let total = 0;
  let lastScale = Number.POSITIVE_INFINITY;
  let i = skipSpaces(text, 0);
  if (i === text.length) return null;
  while (i < text.length) {
    const start = i;
    while (i < text.length && (text[i] ?? '') >= '0' && (text[i] ?? '') <= '9') i++;
    if (i === start || i - start > 12) return null;
    const digits = text.slice(start, i);
    const unit = text.startsWith('ms', i) ? 'ms' : (UNIT_MS.find(([u]) => u === text[i])?.[0] ?? '');
    i += unit.length;
    const scale = unit === '' ? 1000 : (UNIT_MS.find(([u]) => u === unit)?.[1] ?? 0);
    if (scale === 0 || scale >= lastScale) return null;
    lastScale = scale;
    total += Number(digits) * scale;
    if (total > MAX_MSEC) return null;
    i = skipSpaces(text, i);
  }
  return total;
}

function skipSpaces(text: string, from: number): number {
  let i = from;
  while (text[i] === ' ' || text[i] === '\t') i++;
  return i;
}
