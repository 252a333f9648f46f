/**
 * The demo's page: the incident channel as Slack shows it (threads expand in place, updates
 * arrive over SSE), a /okome composer, the persona switch, the fault panel with the lab's state,
 * and a guided tour of the runbook's incidents. Plain DOM, bundled by the demo at start.
 */
import type {
  ApiEphemeral,
  ApiMessage,
  CommandHint,
  DemoEvents,
  DemoState,
  FaultView,
  LabView,
  Persona,
  PersonaId,
} from './api-types.js';
import { type BlockAction, type MessageInput, type RenderOptions, renderMessage } from './block-kit.js';

// ── State ───────────────────────────────────────────────────────────────────────────────────

interface Model {
  channel: string;
  personas: readonly Persona[];
  commands: readonly CommandHint[];
  /** Every message of the channel by ts, roots and replies. */
  messages: Map<string, ApiMessage>;
  ephemerals: Map<PersonaId, ApiEphemeral[]>;
  faults: readonly FaultView[];
  lab: LabView | null;
}

const model: Model = {
  channel: '',
  personas: [],
  commands: [],
  messages: new Map(),
  ephemerals: new Map(),
  faults: [],
  lab: null,
};
const expanded = new Set<string>();
const busyFaults = new Set<string>();
let persona: PersonaId = readPersona();
let tourStep = Number(localStorage.getItem('okome-demo-tour') ?? '0') || 0;

function readPersona(): PersonaId {
  const saved = localStorage.getItem('okome-demo-persona');
  return saved === 'approver1' || saved === 'approver2' || saved === 'stranger' ? saved : 'requester';
}

function loadState(state: DemoState): void {
  model.channel = state.channel;
  model.personas = state.personas;
  model.commands = state.commands;
  model.messages = new Map();
  for (const thread of state.messages) {
    model.messages.set(thread.root.ts, thread.root);
    for (const reply of thread.replies) model.messages.set(reply.ts, reply);
  }
  model.ephemerals = new Map();
  for (const [id, list] of Object.entries(state.ephemerals)) model.ephemerals.set(id as PersonaId, [...list]);
  model.faults = state.faults;
  model.lab = state.lab;
  renderAll();
}

// ── API ─────────────────────────────────────────────────────────────────────────────────────

async function api(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) throw new Error(typeof json.error === 'string' ? json.error : `HTTP ${response.status}`);
  return json;
}

function runCommand(text: string, as: PersonaId = persona): Promise<unknown> {
  return api('/api/command', { persona: as, text });
}

function click(message: ApiMessage, action: BlockAction): void {
  api('/api/click', { persona, channel: message.channel, ts: message.ts, ...action }).catch(
    (error: unknown) => status(`click failed: ${String(error)}`, true),
  );
}

async function fault(f: FaultView, action: 'apply' | 'revert'): Promise<void> {
  busyFaults.add(f.id);
  renderFaults();
  try {
    await api('/api/fault', {
      name: f.name,
      action,
      ...(f.node === null ? {} : { node: f.node }),
      ...(f.service === null ? {} : { service: f.service }),
    });
    status(`${action === 'apply' ? 'applied' : 'reverted'}: ${f.label}`);
  } catch (error) {
    status(String(error), true);
  } finally {
    busyFaults.delete(f.id);
    renderFaults();
  }
}

function connect(): void {
  const conn = byId('conn');
  const source = new EventSource('/api/events');
  const on = <E extends keyof DemoEvents>(event: E, handle: (data: DemoEvents[E]) => void) =>
    source.addEventListener(event, (e) =>
      handle(JSON.parse((e as MessageEvent<string>).data) as DemoEvents[E]),
    );
  source.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.className = 'live';
  });
  source.addEventListener('error', () => {
    conn.textContent = 'reconnecting…';
    conn.className = 'down';
  });
  on('state', loadState);
  on('message', (m) => {
    if (m.deleted) model.messages.delete(m.ts);
    else model.messages.set(m.ts, m);
    renderFeed();
  });
  on('ephemeral', (e) => {
    const list = model.ephemerals.get(e.persona) ?? [];
    list.push(e);
    model.ephemerals.set(e.persona, list);
    if (e.persona === persona) renderFeed();
  });
  on('faults', (faults) => {
    model.faults = faults;
    renderFaults();
    renderTour(); // its Break/Revert buttons follow the faults
  });
  on('lab', (lab) => {
    model.lab = lab;
    renderLab();
  });
}

// ── The channel ─────────────────────────────────────────────────────────────────────────────

function renderAll(): void {
  byId('channel-id').textContent = model.channel;
  renderPersonas();
  renderFeed();
  renderLab();
  renderFaults();
  renderTour();
}

function renderPersonas(): void {
  const nav = byId('personas');
  nav.replaceChildren(
    ...model.personas.map((p) => {
      const b = el(
        'button',
        { type: 'button', title: p.role, 'aria-pressed': String(p.id === persona) },
        p.name,
      );
      b.dataset.persona = p.id;
      b.addEventListener('click', () => {
        persona = p.id;
        localStorage.setItem('okome-demo-persona', p.id);
        renderPersonas();
        renderFeed();
        status(`acting as ${p.name}: ${p.role}`);
      });
      return b;
    }),
  );
}

function renderOptions(onAction: RenderOptions['onAction']): RenderOptions {
  return {
    onAction,
    userName: (id) =>
      model.personas.find((p) => p.userId === id)?.name ?? (id === 'U0BOT' ? 'okome' : undefined),
    channelName: (id) => (id === model.channel ? 'incidents' : undefined),
  };
}

function input(message: ApiMessage): MessageInput {
  return {
    text: message.text,
    blocks: message.blocks,
    user: message.user,
    ...(message.botId === null ? {} : { username: 'okome' }),
    ts: message.ts,
    edited: message.edits > 0,
  };
}

/** A message of the channel or a thread, its buttons clicking as the current persona. */
function messageRow(message: ApiMessage): HTMLElement {
  return renderMessage(
    input(message),
    renderOptions((action) => click(message, action)),
  );
}

function ephemeralRow(e: ApiEphemeral): HTMLElement {
  const row = renderMessage(
    { text: e.text, blocks: e.blocks, username: 'okome', ts: e.ts },
    renderOptions(() => status('buttons in a note only you see are not wired here', true)),
  );
  row.classList.add('ephemeral');
  row.querySelector('.sk-meta')?.append(el('span', { class: 'note' }, 'Only visible to you'));
  return row;
}

function renderFeed(): void {
  const feed = byId('feed');
  const atBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 40;
  const all = [...model.messages.values()].sort(byTs);
  const roots = all.filter((m) => m.threadTs === null);
  const repliesOf = new Map<string, ApiMessage[]>();
  for (const m of all) {
    if (m.threadTs === null) continue;
    const list = repliesOf.get(m.threadTs) ?? [];
    list.push(m);
    repliesOf.set(m.threadTs, list);
  }
  const mine = model.ephemerals.get(persona) ?? [];
  type Item = { ts: string; node: HTMLElement };
  const items: Item[] = roots.map((root) => {
    const row = messageRow(root);
    const replies = repliesOf.get(root.ts) ?? [];
    const threadNotes = mine.filter((e) => e.threadTs === root.ts);
    if (replies.length + threadNotes.length > 0) {
      const open = expanded.has(root.ts);
      const toggle = el(
        'button',
        { type: 'button', class: 'thread-toggle', 'aria-expanded': String(open) },
        open ? 'Hide thread' : `${replies.length} ${replies.length === 1 ? 'reply' : 'replies'}`,
      );
      toggle.addEventListener('click', () => {
        if (expanded.has(root.ts)) expanded.delete(root.ts);
        else expanded.add(root.ts);
        renderFeed();
      });
      const content = row.querySelector('.sk-content');
      content?.append(toggle);
      if (open) {
        const box = el('div', { class: 'replies' });
        const inThread: Item[] = [
          ...replies.map((r) => ({ ts: r.ts, node: messageRow(r) })),
          ...threadNotes.map((e) => ({ ts: e.ts, node: ephemeralRow(e) })),
        ].sort(byTs);
        box.append(...inThread.map((i) => i.node));
        content?.append(box);
      }
    }
    return { ts: root.ts, node: row };
  });
  for (const e of mine) if (e.threadTs === null) items.push({ ts: e.ts, node: ephemeralRow(e) });
  items.sort(byTs);
  feed.replaceChildren(...items.map((i) => i.node));
  if (atBottom) feed.scrollTop = feed.scrollHeight;
}

// ── Composer ────────────────────────────────────────────────────────────────────────────────

let selected = 0;

function suggestions(text: string): CommandHint[] {
  const typed = text.trim().toLowerCase();
  if (!typed.startsWith('/')) return [];
  return model.commands.filter((c) => {
    const verb = c.usage.split(' ').slice(0, 2).join(' ').toLowerCase();
    return verb.startsWith(typed) || (typed.startsWith(verb) && typed.length <= verb.length + 1);
  });
}

function renderSuggestions(): void {
  const input = byId<HTMLInputElement>('composer-input');
  const list = byId('suggestions');
  const found = suggestions(input.value);
  list.hidden = found.length === 0;
  selected = Math.min(selected, Math.max(0, found.length - 1));
  list.replaceChildren(
    ...found.map((c, i) => {
      const li = el('li', { role: 'option', 'aria-selected': String(i === selected) }, c.usage);
      li.append(el('small', {}, c.help));
      li.addEventListener('mousedown', (e) => {
        e.preventDefault();
        complete(c);
      });
      return li;
    }),
  );
}

/** The command's fixed words ("/okome check "), without its placeholders. */
function complete(c: CommandHint): void {
  const input = byId<HTMLInputElement>('composer-input');
  const words = c.usage.split(' ').filter((w) => !/^[<[]/.test(w));
  input.value = `${words.join(' ')}${c.usage.includes(' <') || c.usage.includes(' [') ? ' ' : ''}`;
  input.focus();
  renderSuggestions();
}

function setUpComposer(): void {
  const input = byId<HTMLInputElement>('composer-input');
  input.addEventListener('input', () => {
    selected = 0;
    renderSuggestions();
  });
  input.addEventListener('keydown', (e) => {
    const found = suggestions(input.value);
    if (found.length === 0) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      selected = (selected + (e.key === 'ArrowDown' ? 1 : found.length - 1)) % found.length;
      renderSuggestions();
    } else if (e.key === 'Tab') {
      e.preventDefault();
      const pick = found[selected];
      if (pick !== undefined) complete(pick);
    } else if (e.key === 'Escape') byId('suggestions').hidden = true;
  });
  input.addEventListener('blur', () => {
    byId('suggestions').hidden = true;
  });
  byId('composer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (text === '') return;
    input.value = '';
    byId('suggestions').hidden = true;
    status(`sent ${text} as ${personaName()}…`);
    runCommand(text).then(
      () => status(`${text}: the bot acknowledged; its answer appears in the channel`),
      (error: unknown) => status(String(error), true),
    );
  });
}

function status(text: string, error = false): void {
  const line = byId('composer-status');
  line.textContent = text;
  line.className = error ? 'error' : '';
}

function personaName(): string {
  return model.personas.find((p) => p.id === persona)?.name ?? persona;
}

// ── Lab and faults ──────────────────────────────────────────────────────────────────────────

function renderLab(): void {
  const box = byId('lab');
  const lab = model.lab;
  if (lab === null) {
    box.textContent = 'reading…';
    return;
  }
  const grid = el('div', { class: 'lab-grid' });
  const holders = lab.vipHolders;
  const vip =
    holders.length === 0
      ? el('span', { class: 'vip-split' }, 'nobody')
      : holders.length > 1
        ? el('span', { class: 'vip-split' }, `SPLIT BRAIN: ${holders.join(' and ')}`)
        : el('span', {}, holders.join(''));
  vip.id = 'vip-holder';
  grid.append(el('b', {}, 'VIP'), vip);
  for (const [node, units] of Object.entries(lab.units)) {
    const cell = el('div');
    for (const [unit, state] of Object.entries(units))
      cell.append(el('span', { class: `unit ${state}`, title: state }, unit));
    grid.append(el('b', {}, node), cell);
  }
  grid.append(el('b', {}, 'orchestrator'), el('span', {}, lab.orchestrator));
  box.replaceChildren(grid);
}

function renderFaults(): void {
  const box = byId('faults');
  box.replaceChildren(
    ...model.faults.map((f) => {
      const busy = busyFaults.has(f.id);
      const row = el('div', { class: `fault${f.applied ? ' applied' : ''}${busy ? ' busy' : ''}` });
      row.dataset.fault = f.id;
      const label = el('div');
      label.append(el('div', { class: 'label' }, f.label), el('div', { class: 'shows' }, `→ ${f.shows}`));
      const button = el('button', { type: 'button' }, busy ? '…' : f.applied ? 'Revert' : 'Apply');
      button.addEventListener('click', () => void fault(f, f.applied ? 'revert' : 'apply'));
      row.append(label, button);
      return row;
    }),
  );
}

function setUpAlerts(): void {
  for (const [id, alertStatus] of [
    ['alert-firing', 'firing'],
    ['alert-resolved', 'resolved'],
  ] as const) {
    byId(id).addEventListener('click', () => {
      api('/api/alert', { status: alertStatus }).then(
        (r) => status(`Alertmanager → bot webhook: HTTP ${String(r.botStatus)}`),
        (error: unknown) => status(String(error), true),
      );
    });
  }
}

// ── Guided tour ─────────────────────────────────────────────────────────────────────────────

interface TourStep {
  readonly title: string;
  /** Fault ids (name:node:service) the step applies. */
  readonly faults: readonly string[];
  readonly steps: readonly string[];
  readonly notice: string;
  /** Who asks the bot in this step. */
  readonly asker?: PersonaId;
}

const TOUR: readonly TourStep[] = [
  {
    title: 'A healthy lab',
    faults: [],
    steps: ['Ask the bot: /okome status'],
    notice:
      'Every runbook check runs in parallel against the lab; the answer says "healthy" and opens nothing.',
  },
  {
    title: 'Incident 1: nginx stopped on the frontend Pi',
    faults: ['service-stop:pi-a:nginx'],
    steps: [
      'Break it (the fault below)',
      'Watch the channel: keepalived moves the VIP to pi-b and the failover notice appears with no command typed',
      'Ask the bot: /okome status → Incident 1 with a "Restart nginx on pi-a" card',
      'Switch to Avery (approver 1), click Approve, confirm',
    ],
    notice:
      'Open the thread: the exact command, exit 0, then a passed verification. The VIP returns to pi-a.',
  },
  {
    title: 'Incident 2: Redis down on the backend Pi',
    faults: ['service-stop:pi-b:redis-server'],
    steps: [
      'Break it, then ask: /okome status → Incident 2 with "Restart redis-server on pi-b"',
      'As Sam (no rights) click Approve: the bot says why, only to Sam, and nothing runs',
      'As Avery click Approve, confirm',
    ],
    notice:
      'The thread shows sudo systemctl restart redis-server → exit 0 and the verification (PING answers PONG).',
  },
  {
    title: 'Incident 3: nobody holds the VIP',
    faults: ['service-stop:pi-a:keepalived', 'service-stop:pi-b:keepalived'],
    steps: [
      'Stop keepalived on both Pis',
      'Ask: /okome status',
      'Approve "Restart keepalived" as Avery or Blake',
    ],
    notice:
      'The restart runs on pi-a, then pi-b, one after the other (sequential); Blake may approve only through the approver user group.',
  },
  {
    title: 'Incident 4: the frontend Pi is dead',
    faults: ['link-down:pi-a:'],
    steps: ['Cut pi-a’s link: the VIP moves to pi-b', 'Ask: /okome status', 'Revert the fault when done'],
    notice:
      'No action card: nothing on a dead Pi can be fixed over SSH. The advice is to reflash pi-a, given only because pi-a is unreachable; a reachable Pi with nginx stopped (incident 1) gets a restart instead.',
  },
  {
    title: 'Incident 5: the orchestrator is down',
    faults: ['orchestrator-down::'],
    steps: ['Break it, ask: /okome status', 'Revert the fault when done'],
    notice:
      'Incident 5 offers no cache action at all: golden rule 1, cache nodes are symptoms, not causes. (Streaming directives removed gives 5b, also without a cache action.)',
  },
  {
    title: 'Incident 6: cache miss storm and runaway budgets',
    faults: ['budget-runaway::', 'redis-miss-storm::'],
    asker: 'requester',
    steps: [
      'Break it, ask as Riley: /okome status → a Flush Redis card needing two approvals',
      'As Riley click Approve: the requester may not approve a two-person action',
      'As Avery approve (1 of 2), then as Blake (2 of 2)',
    ],
    notice:
      'The two-person flush: FLUSHDB runs once, only after two different approvers who are not the requester.',
  },
  {
    title: 'Incident 7: chaos test left on',
    faults: ['chaos:pi-a:nginx'],
    steps: ['Break it: chaos stops nginx on pi-a, the VIP moves', 'Ask: /okome status', 'Two approvals'],
    notice:
      'The card lists the order: the chaos flag goes first (so chaos cannot strike again), then iptables -F, then the restarts.',
  },
  {
    title: 'An alert opens an incident by itself',
    faults: ['service-stop:pi-b:redis-server'],
    steps: [
      'Stop redis on pi-b, then click "Alert: RedisDown firing" in the fault panel (no command typed)',
      'Revert the fault, then click "Alert resolved"',
    ],
    notice:
      'The alert goes through the bot’s real Alertmanager webhook: the incident opens and is diagnosed by itself, and the resolved alert is noted once in its thread.',
  },
];

function renderTour(): void {
  const box = byId('tour');
  const list = el('ol');
  TOUR.forEach((step, i) => {
    const li = el('li', { class: i === tourStep ? 'current' : '' });
    const title = el('b', {}, step.title);
    title.style.cursor = 'pointer';
    title.addEventListener('click', () => {
      tourStep = i;
      localStorage.setItem('okome-demo-tour', String(i));
      renderTour();
    });
    li.append(title);
    if (i === tourStep) {
      const steps = el('ul');
      steps.append(...step.steps.map((s) => el('li', {}, s)));
      const actions = el('div', { class: 'step-actions' });
      for (const id of step.faults) {
        const f = model.faults.find((x) => x.id === id);
        if (f === undefined) continue;
        const b = el('button', { type: 'button' }, `${f.applied ? 'Revert' : 'Break'}: ${f.label}`);
        b.addEventListener('click', () => void fault(f, f.applied ? 'revert' : 'apply'));
        actions.append(b);
      }
      const ask = el('button', { type: 'button' }, 'Ask: /okome status');
      ask.addEventListener('click', () => {
        const as = step.asker ?? persona;
        runCommand('/okome status', as).then(
          () => status('status asked; the answer appears in the channel'),
          (error: unknown) => status(String(error), true),
        );
      });
      actions.append(ask);
      if (i + 1 < TOUR.length) {
        const next = el('button', { type: 'button' }, 'Next step');
        next.addEventListener('click', () => {
          tourStep = i + 1;
          localStorage.setItem('okome-demo-tour', String(tourStep));
          renderTour();
        });
        actions.append(next);
      }
      li.append(steps, el('div', { class: 'notice' }, `What to notice: ${step.notice}`), actions);
    }
    list.append(li);
  });
  box.replaceChildren(list);
}

// ── DOM helpers ─────────────────────────────────────────────────────────────────────────────

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== '') node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`#${id} is missing from the page`);
  return node as T;
}

/** Slack ts strings have a fixed shape (10 digits, dot, 6 digits): as numbers they lose the last digit. */
function byTs(a: { ts: string }, b: { ts: string }): number {
  return a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0;
}

setUpComposer();
setUpAlerts();
renderAll();
connect();
