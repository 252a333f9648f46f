// Reading Web API request bodies the way Slack accepts them: form-urlencoded (what web-api sends,
// with objects JSON-stringified inside) or JSON.

import type { IncomingMessage } from 'node:http';
import { isRecord } from './block-kit-limits.js';

const BODY_LIMIT_BYTES = 5 * 1024 * 1024;

/** Parameters that travel JSON-encoded inside a form and are recorded decoded. */
const JSON_PARAMS = ['blocks', 'view', 'metadata', 'attachments', 'files'] as const;

export async function readBody(request: IncomingMessage): Promise<string> {
  return (await readBodyBytes(request)).toString('utf8');
}

export async function readBodyBytes(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > BODY_LIMIT_BYTES) throw new Error(`request body larger than ${BODY_LIMIT_BYTES} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** The call's parameters, or an Error naming what Slack would refuse. */
export function parseApiParams(
  contentType: string | undefined,
  body: string,
): Record<string, unknown> | Error {
  const type = mediaType(contentType);
  let params: Record<string, unknown>;
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = body.length === 0 ? {} : JSON.parse(body);
    } catch (error) {
      return new Error(`invalid JSON body: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!isRecord(parsed)) return new Error('a JSON body must be an object');
    params = parsed;
  } else if (type === 'application/x-www-form-urlencoded' || type === '' || body.length === 0) {
    params = Object.fromEntries(new URLSearchParams(body));
  } else {
    return new Error(`unsupported content type ${JSON.stringify(contentType)}`);
  }
  for (const key of JSON_PARAMS) {
    const value = params[key];
    if (typeof value !== 'string') continue;
    try {
      params[key] = JSON.parse(value);
    } catch {
      // Left as the raw string: the method then answers invalid_blocks_format / invalid_arguments.
    }
  }
  return params;
}

export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  return match?.[1];
}
