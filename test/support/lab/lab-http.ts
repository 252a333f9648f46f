import type { Lab } from './lab.js';

export interface LabHttpResponse {
  /** 0 when no response came (curl's exit code is in curlExit). */
  readonly status: number;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly curlExit: number;
  readonly timeTotalMs: number;
}

const MARK = '\n__okome_lab_meta__ ';

/** An HTTP request made by curl inside okl-bot: a real client on the lab network. */
export async function labRequest(
  lab: Lab,
  url: string,
  options: { method?: 'GET' | 'HEAD'; headers?: Readonly<Record<string, string>>; maxTimeSec?: number } = {},
): Promise<LabHttpResponse> {
  const args = [
    '-s',
    '-D',
    '-',
    '--max-time',
    String(options.maxTimeSec ?? 5),
    '-w',
    `${MARK}%{http_code} %{time_total}`,
  ];
  if (options.method === 'HEAD') args.push('-I');
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(url);
  const result = await lab.exec('bot', ['curl', ...args], {
    timeoutMs: ((options.maxTimeSec ?? 5) + 5) * 1000,
  });
  const cut = result.stdout.lastIndexOf(MARK);
  const raw = cut < 0 ? result.stdout : result.stdout.slice(0, cut);
  const [codeText = '0', timeText = '0'] = (cut < 0 ? '' : result.stdout.slice(cut + MARK.length))
    .trim()
    .split(' ');
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(codeText),
    headers,
    body,
    curlExit: result.code,
    timeTotalMs: Math.round(Number(timeText) * 1000),
  };
}
