/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: every sample
 * belongs to a family declared by # TYPE before it, names and labels are well formed, values
 * are numbers, no series repeats. Throws with the line number otherwise.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly types: ReadonlyMap<string, MetricType>;
  readonly samples: readonly Sample[];
  /** The value of one series, or undefined. Labels must match exactly. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** The sum over every series of `name` whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SUFFIXES: Record<MetricType, readonly string[]> = {
  counter: ['', '_total', '_created'],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  summary: ['', '_sum', '_count', '_created'],
  untyped: [''],
};

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case (prom-client writes "Nan"). */
function parseValue(text: string, where: string): number {
  const word = text.toLowerCase();
  if (word === '+inf' || word === 'inf') return Number.POSITIVE_INFINITY;
  if (word === '-inf') return Number.NEGATIVE_INFINITY;
  if (word === 'nan') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${text}`);
  return Number(text);
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without =`);
    const name = text.slice(i, eq).trim();
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name ${name}`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let j = eq + 2;
    let value = '';
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const next = text[j + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`${where}: bad escape \\${String(next)}`);
        j += 2;
        continue;
      }
      if (c === '\n') throw new Error(`${where}: raw newline in a label value`);
      value += c;
      j += 1;
    }
    if (Object.hasOwn(labels, name)) throw new Error(`${where}: label ${name} repeated`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i += 1;
    else if (i < text.length) throw new Error(`${where}: expected , after a label`);
  }
  return labels;
}

export function parsePrometheusText(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const types = new Map<string, MetricType>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (m === null) return; // a plain comment
      const [, kind, name = '', rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      if (kind === 'HELP') {
        if (helped.has(name)) throw new Error(`${where}: second HELP for ${name}`);
        helped.add(name);
        return;
      }
      if (types.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
      if (!(rest in SUFFIXES)) throw new Error(`${where}: unknown type ${rest}`);
      if (samples.some((s) => s.name.startsWith(name)))
        throw new Error(`${where}: TYPE after samples of ${name}`);
      types.set(name, rest as MetricType);
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (m === null) throw new Error(`${where}: not a sample: ${line}`);
    const [, name = '', labelText = '', valueText = ''] = m;
    const family = [...types.entries()].find(([base, type]) =>
      SUFFIXES[type].some((suffix) => `${base}${suffix}` === name),
    );
    if (family === undefined) throw new Error(`${where}: ${name} has no # TYPE before it`);
    const labels = parseLabels(labelText, where);
    if (family[1] === 'histogram' && name.endsWith('_bucket') && !('le' in labels))
      throw new Error(`${where}: bucket without le`);
    const key = `${name}{${Object.entries(labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',')}}`;
    if (seen.has(key)) throw new Error(`${where}: series ${key} repeated`);
    seen.add(key);
    samples.push({ name, labels, value: parseValue(valueText, where) });
  });
  const matches = (s: Sample, name: string, labels: Record<string, string>, exact: boolean) =>
    s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
    (!exact || Object.keys(s.labels).length === Object.keys(labels).length);
  return {
    types,
    samples,
    value: (name, labels = {}) => samples.find((s) => matches(s, name, labels, true))?.value,
    sum: (name, labels = {}) =>
      samples.filter((s) => matches(s, name, labels, false)).reduce((total, s) => total + s.value, 0),
  };
}
