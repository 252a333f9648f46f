import {
  NODE_HEADER,
  SIGNATURE_HEADER,
  signHook,
  TIMESTAMP_HEADER,
} from '../../src/alerts/keepalived-hook.js';
import type { RunningApp } from '../../src/app.js';
import type { Store } from '../../src/store/store-port.js';

let nonce = 0;

/**
 * A keepalived transition as contrib/keepalived-notify sends it, signed with `secret`; `at`
 * (whole seconds, as the script stamps it) defaults to the signing time. `resend` sends the same
 * bytes again, as the script's retry does.
 */
export async function postTransition(
  app: RunningApp,
  secret: string,
  node: string,
  state: string,
  at?: Date,
): Promise<Response & { resend: () => Promise<Response> }> {
  const stamp = at === undefined ? {} : { at: `${at.toISOString().slice(0, 19)}Z` };
  const body = JSON.stringify({
    node,
    instance: 'VI_1',
    state,
    ...stamp,
    nonce: `n${++nonce}-${process.pid}`,
  });
  const ts = Math.floor(Date.now() / 1000);
  const headers = {
    'content-type': 'application/json',
    [TIMESTAMP_HEADER]: String(ts),
    [NODE_HEADER]: node,
    [SIGNATURE_HEADER]: signHook(secret, ts, node, body),
  };
  const url = `http://127.0.0.1:${app.httpPort}/hooks/keepalived`;
  const send = () => fetch(url, { method: 'POST', headers, body });
  const res = await send();
  return Object.assign(res, { resend: send });
}

/** The texts of every notice in every incident's timeline, from the store. */
export async function timelineNotices(store: Pick<Store, 'incidentById' | 'timeline'>): Promise<string[]> {
  const found: string[] = [];
  for (let id = 1; ; id += 1) {
    if ((await store.incidentById(id)) === undefined) return found;
    for (const e of await store.timeline(id)) if (e.kind === 'notice') found.push(e.text);
  }
}
