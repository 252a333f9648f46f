// The Web API methods the bot uses, answering as Slack does: HTTP 200 with ok:true, or ok:false
// with Slack's error code (and `errors` for Block Kit violations).

import { z } from 'zod';
import { checkMessage, checkView, isRecord } from './block-kit-limits.js';
import type { Directory } from './directory.js';
import type { FileStore } from './files.js';
import type { MessageStore, StoredMessage } from './message-store.js';
import type { Workspace } from './payloads.js';
import type { TriggerRegistry } from './triggers.js';

export interface ApiReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly warnings?: readonly string[];
}

export interface WebApiContext {
  readonly workspace: Workspace;
  readonly store: MessageStore;
  readonly directory: Directory;
  readonly triggers: TriggerRegistry;
  /** A fresh single-use Socket Mode URL. */
  readonly openSocketUrl: () => string;
  readonly files: FileStore;
  /** Where a reserved file's bytes are POSTed. */
  readonly uploadUrl: (fileId: string) => string;
  readonly nowMs: number;
}

type Handler = (params: Record<string, unknown>, context: WebApiContext) => ApiReply;

export const SUPPORTED_METHODS = [
  'auth.test',
  'apps.connections.open',
  'chat.postMessage',
  'chat.update',
  'chat.postEphemeral',
  'chat.getPermalink',
  'views.open',
  'users.info',
  'usergroups.users.list',
  'files.getUploadURLExternal',
  'files.completeUploadExternal',
] as const;

const booleanParam = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((value) => {
  return value === true || value === 'true' || value === '1';
});

const PostMessageParams = z.object({
  channel: z.string().optional(),
  text: z.string().optional(),
  blocks: z.unknown().optional(),
  attachments: z.unknown().optional(),
  thread_ts: z.string().optional(),
  reply_broadcast: booleanParam.optional(),
  metadata: z.unknown().optional(),
});

const UpdateParams = z.object({
  channel: z.string().optional(),
  ts: z.string().optional(),
  text: z.string().optional(),
  blocks: z.unknown().optional(),
});

const EphemeralParams = z.object({
  channel: z.string().optional(),
  user: z.string().optional(),
  text: z.string().optional(),
  blocks: z.unknown().optional(),
  thread_ts: z.string().optional(),
});

const PermalinkParams = z.object({ channel: z.string().optional(), message_ts: z.string().optional() });

/** Where the emulator's permalinks point: a host that resolves nowhere, never Slack. */
export const PERMALINK_BASE = 'https://emulated.slack.test';

const ViewsOpenParams = z.object({ trigger_id: z.string().optional(), view: z.unknown().optional() });
const UsersInfoParams = z.object({ user: z.string().optional() });
const UsergroupParams = z.object({ usergroup: z.string().optional() });

/** Answers one call; the transport (token, faults, recording) is the emulator's job. */
export function answerApiCall(
  method: string,
  params: Record<string, unknown>,
  token: string | undefined,
  context: WebApiContext,
): ApiReply {
  const handler = HANDLERS.get(method);
  if (handler === undefined) return fail('unknown_method', { req_method: method });
  const tokenError = checkToken(method, token);
  if (tokenError !== undefined) return fail(tokenError);
  return handler(params, context);
}

const HANDLERS = new Map<string, Handler>([
  ['auth.test', authTest],
  ['apps.connections.open', (_params, context) => ok({ url: context.openSocketUrl() })],
  ['chat.postMessage', postMessage],
  ['chat.update', updateMessage],
  ['chat.postEphemeral', postEphemeral],
  ['chat.getPermalink', getPermalink],
  ['views.open', openView],
  ['users.info', usersInfo],
  ['usergroups.users.list', usergroupMembers],
  ['files.getUploadURLExternal', getUploadUrlExternal],
  ['files.completeUploadExternal', completeUploadExternal],
]);

function checkToken(method: string, token: string | undefined): string | undefined {
  if (token === undefined || token.length === 0) return 'not_authed';
  const isAppToken = token.startsWith('xapp-');
  if (method === 'apps.connections.open') return isAppToken ? undefined : 'not_allowed_token_type';
  if (isAppToken) return 'not_allowed_token_type';
  return /^xox[bp]-/.test(token) ? undefined : 'invalid_auth';
}

function authTest(_params: Record<string, unknown>, { workspace }: WebApiContext): ApiReply {
  return ok({
    team_id: workspace.teamId,
    user_id: workspace.botUserId,
    bot_id: workspace.botId,
    team: workspace.teamDomain,
    user: 'bot',
    url: `https://${workspace.teamDomain}.slack.com/`,
  });
}

function postMessage(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = PostMessageParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const { channel, text, blocks, attachments, thread_ts, reply_broadcast, metadata } = params.data;
  if (channel === undefined || channel.length === 0) return fail('channel_not_found');
  if (text === undefined && blocks === undefined && attachments === undefined) return fail('no_text');
  const verdict = checkMessage({ text, blocks });
  if (!verdict.ok) return blockKitFailure(verdict.error, verdict.errors);
  const message = context.store.post(
    {
      channel,
      text: text ?? '',
      blocks: Array.isArray(blocks) ? blocks : undefined,
      threadTs: thread_ts,
      replyBroadcast: reply_broadcast ?? false,
      user: context.workspace.botUserId,
      botId: context.workspace.botId,
      metadata,
    },
    context.nowMs,
  );
  return {
    ...ok({ channel, ts: message.ts, message: wireMessage(message, context.workspace) }),
    ...warn(verdict),
  };
}

function updateMessage(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = UpdateParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const { channel, ts, text, blocks } = params.data;
  if (channel === undefined || channel.length === 0) return fail('channel_not_found');
  if (ts === undefined || ts.length === 0) return fail('message_not_found');
  if (text === undefined && blocks === undefined) return fail('no_text');
  const existing = context.store.find(channel, ts);
  if (existing === undefined) return fail('message_not_found');
  if (existing.user !== context.workspace.botUserId) return fail('cant_update_message');
  const verdict = checkMessage({ text, blocks });
  if (!verdict.ok) return blockKitFailure(verdict.error, verdict.errors);
  const updated = context.store.update(channel, ts, {
    text,
    blocks: Array.isArray(blocks) ? blocks : undefined,
  });
  if (updated === undefined) return fail('message_not_found');
  return {
    ...ok({ channel, ts, text: updated.text, message: wireMessage(updated, context.workspace) }),
    ...warn(verdict),
  };
}

function postEphemeral(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = EphemeralParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const { channel, user, text, blocks, thread_ts } = params.data;
  if (channel === undefined || channel.length === 0) return fail('channel_not_found');
  if (user === undefined || context.directory.user(user) === undefined) return fail('user_not_found');
  if (text === undefined && blocks === undefined) return fail('no_text');
  const verdict = checkMessage({ text, blocks });
  if (!verdict.ok) return blockKitFailure(verdict.error, verdict.errors);
  const ephemeral = context.store.postEphemeral(
    {
      channel,
      user,
      text: text ?? '',
      blocks: Array.isArray(blocks) ? blocks : undefined,
      threadTs: thread_ts,
      via: 'chat.postEphemeral',
    },
    context.nowMs,
  );
  return { ...ok({ message_ts: ephemeral.messageTs }), ...warn(verdict) };
}

/** As Slack: `/archives/C…/p<ts without the dot>`, and a reply names its thread. */
function getPermalink(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = PermalinkParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const { channel, message_ts: ts } = params.data;
  if (channel === undefined || channel.length === 0) return fail('channel_not_found');
  if (ts === undefined || ts.length === 0) return fail('message_not_found');
  const message = context.store.find(channel, ts);
  if (message === undefined) return fail('message_not_found');
  const base = `${PERMALINK_BASE}/archives/${channel}/p${ts.replace('.', '')}`;
  const permalink =
    message.threadTs === undefined || message.threadTs === ts
      ? base
      : `${base}?thread_ts=${message.threadTs}&cid=${channel}`;
  return ok({ channel, permalink });
}

function openView(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = ViewsOpenParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const { trigger_id: triggerId, view } = params.data;
  if (triggerId === undefined || view === undefined) {
    return fail('invalid_arguments', { errors: ['trigger_id and view are required'] });
  }
  const trigger = context.triggers.check(triggerId, context.nowMs);
  if (trigger !== 'valid') return fail(trigger);
  const verdict = checkView(view);
  if (!verdict.ok) {
    return fail('invalid_arguments', {
      errors: verdict.errors,
      response_metadata: { messages: verdict.errors.map((error) => `[ERROR] ${error}`) },
    });
  }
  const id = `V${context.nowMs.toString(36).toUpperCase()}`;
  return ok({
    view: {
      ...(isRecord(view) ? view : {}),
      id,
      team_id: context.workspace.teamId,
      app_id: context.workspace.appId,
      bot_id: context.workspace.botId,
      state: { values: {} },
      hash: `${Math.floor(context.nowMs / 1000)}.${id}`,
    },
  });
}

function usersInfo(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = UsersInfoParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const user = params.data.user === undefined ? undefined : context.directory.user(params.data.user);
  return user === undefined ? fail('user_not_found') : ok({ user });
}

function usergroupMembers(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = UsergroupParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const members =
    params.data.usergroup === undefined
      ? undefined
      : context.directory.usergroupMembers(params.data.usergroup);
  return members === undefined ? fail('no_such_subteam') : ok({ users: [...members] });
}

const UploadUrlParams = z.object({
  filename: z.string().optional(),
  length: z.union([z.number(), z.string()]).optional(),
  alt_txt: z.string().optional(),
  snippet_type: z.string().optional(),
});

/** Reserves a file: its id and the URL its bytes go to (the URL is the credential: no token). */
function getUploadUrlExternal(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = UploadUrlParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const { filename, length } = params.data;
  const size = typeof length === 'string' ? Number(length) : length;
  if (filename === undefined || filename.length === 0 || size === undefined) {
    return fail('invalid_arguments', { errors: ['filename and length are required'] });
  }
  // Slack: "missing_argument … Typically only occurs when the `length` provided is 0."
  if (!Number.isSafeInteger(size) || size <= 0) return fail('missing_argument');
  const file = context.files.reserve(filename, size);
  return ok({ upload_url: context.uploadUrl(file.id), file_id: file.id });
}

const CompleteParams = z.object({
  files: z
    .array(z.object({ id: z.string(), title: z.string().optional() }))
    .min(1)
    .optional(),
  channel_id: z.string().optional(),
  channels: z.string().optional(),
  thread_ts: z.string().optional(),
  initial_comment: z.string().optional(),
  blocks: z.unknown().optional(),
});

/**
 * Shares uploaded files as one message in the channel (a thread reply with thread_ts, which
 * must be a parent's ts). Without a channel the files stay private: nothing is posted.
 */
function completeUploadExternal(raw: Record<string, unknown>, context: WebApiContext): ApiReply {
  const params = CompleteParams.safeParse(raw);
  if (!params.success) return invalidArguments(params.error);
  const { files, channel_id: channelId, thread_ts: threadTs, initial_comment: comment } = params.data;
  if (files === undefined) return fail('invalid_arguments', { errors: ['files is required'] });
  const found = files.map((f) => ({ ask: f, file: context.files.get(f.id) }));
  // A file never reserved, or whose bytes never arrived, is not there to share.
  if (found.some(({ file }) => file?.content === undefined || file.shared !== undefined)) {
    return fail('file_not_found');
  }
  if (channelId !== undefined && threadTs !== undefined) {
    const parent = context.store.find(channelId, threadTs);
    if (parent === undefined) return fail('message_not_found');
    if (parent.threadTs !== undefined && parent.threadTs !== threadTs) return fail('invalid_thread_ts');
  }
  const shared = found.map(({ ask, file }) => {
    if (file === undefined) throw new Error('unreachable: checked above');
    file.title = ask.title ?? file.filename;
    return { id: file.id, name: file.filename, title: file.title, size: file.content?.length ?? 0 };
  });
  if (channelId !== undefined) {
    const message = context.store.post(
      {
        channel: channelId,
        text: comment ?? '',
        blocks: undefined,
        threadTs,
        replyBroadcast: false,
        user: context.workspace.botUserId,
        botId: context.workspace.botId,
        metadata: undefined,
        files: shared,
      },
      context.nowMs,
    );
    for (const { file } of found) {
      if (file !== undefined)
        file.shared = { channel: channelId, threadTs, ts: message.ts, initialComment: comment };
    }
  }
  return ok({ files: shared.map((f) => ({ id: f.id, title: f.title, name: f.name, size: f.size })) });
}

/** The message object Slack echoes back from chat.postMessage / chat.update. */
function wireMessage(message: StoredMessage, workspace: Workspace): Record<string, unknown> {
  return {
    type: 'message',
    text: message.text,
    user: message.user,
    bot_id: message.botId,
    app_id: workspace.appId,
    team: workspace.teamId,
    ts: message.ts,
    ...(message.blocks === undefined ? {} : { blocks: message.blocks }),
    ...(message.threadTs === undefined ? {} : { thread_ts: message.threadTs }),
    ...(message.metadata === undefined ? {} : { metadata: message.metadata }),
  };
}

function ok(fields: Record<string, unknown>): ApiReply {
  return { status: 200, body: { ok: true, ...fields } };
}

function fail(error: string, fields: Record<string, unknown> = {}): ApiReply {
  return { status: 200, body: { ok: false, error, ...fields } };
}

function warn(verdict: { readonly warnings: readonly string[] }): Pick<ApiReply, 'warnings'> {
  return verdict.warnings.length > 0 ? { warnings: verdict.warnings } : {};
}

function blockKitFailure(error: string, errors: readonly string[]): ApiReply {
  return fail(error, {
    errors: [...errors],
    response_metadata: { messages: errors.map((message) => `[ERROR] ${message}`) },
  });
}

function invalidArguments(error: z.ZodError): ApiReply {
  const errors = error.issues.map((issue) => `${issue.message} [json-pointer:/${issue.path.join('/')}]`);
  return fail('invalid_arguments', {
    errors,
    response_metadata: { messages: errors.map((e) => `[ERROR] ${e}`) },
  });
}
