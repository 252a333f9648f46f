/**
 * Memory of the built, served bot (issue 18 point 5): heap snapshots (each taken after V8's full
 * GC) when idle, after 100 statuses, after 1,100 commands and after 1,100 more. What grows in
 * the second 1,100 is what would grow without bound; the largest growths by constructor are
 * listed. Socket Mode against the emulator on loopback; diagnoses against closed loopback ports.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopbackConfig } from '../test/support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../test/support/slack-emulator/index.js';
import { startBotProcess } from './bot-process.js';

interface HeapSnapshotFile {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

/** Self size and count per constructor (object nodes) and per node type (the rest). */
export function heapSummary(raw: string): {
  total: number;
  by: Map<string, { size: number; count: number }>;
} {
  const heap = JSON.parse(raw) as HeapSnapshotFile;
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const by = new Map<string, { size: number; count: number }>();
  let total = 0;
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt] ?? 0] ?? '?';
    const size = heap.nodes[i + sizeAt] ?? 0;
    const key = type === 'object' ? (heap.strings[heap.nodes[i + nameAt] ?? 0] ?? '?') : `(${type})`;
    const entry = by.get(key) ?? { size: 0, count: 0 };
    entry.size += size;
    entry.count += 1;
    by.set(key, entry);
    total += size;
  }
  return { total, by };
}

async function snapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (let waited = 0; waited < 60_000; waited += 100) {
    await new Promise((r) => setTimeout(r, 100));
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (file === undefined) continue;
    const path = join(dir, file);
    // Written in one go at the end: parse once it is complete JSON.
    try {
      const raw = readFileSync(path, 'utf8');
      JSON.parse(raw);
      return raw;
    } catch {
      // Still being written.
    }
  }
  throw new Error('no heap snapshot within 60 s');
}

async function commands(emu: SlackEmulator, text: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) await emu.slash({ userId: 'U0BENCH', channelId: 'C0OPS', text }).ack;
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 100) / 100;

export async function memoryBench(): Promise<Record<string, unknown>> {
  const emu = await startSlackEmulator();
  const cfg = await loopbackConfig((doc) => {
    (doc.alerts as unknown) = { vipWatch: { enabled: false } };
  });
  const dir = mkdtempSync(join(tmpdir(), 'okome-heap-'));
  const bot = startBotProcess(
    cfg.path,
    { SLACK_BOT_TOKEN: 'xoxb-bench', SLACK_APP_TOKEN: 'xapp-bench', SLACK_API_URL: emu.apiUrl },
    { cwd: dir, nodeFlags: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] },
  );
  try {
    await emu.waitForSocket(30_000);
    await new Promise((r) => setTimeout(r, 2000));
    const pid = bot.child.pid ?? 0;
    const points: { name: string; heap: ReturnType<typeof heapSummary>; rssMb: number }[] = [];
    const take = async (name: string) => {
      points.push({ name, heap: heapSummary(await snapshot(pid, dir)), rssMb: bot.rssMb() });
      // Writing a snapshot stops the process for a while: Socket Mode may have reconnected.
      await emu.waitForSocket(30_000);
    };
    await take('idle');
    await commands(emu, 'status', 100);
    await take('after 100 statuses');
    await commands(emu, 'help', 1000);
    await commands(emu, 'status', 100);
    await take('after 1,100 more commands');
    await commands(emu, 'help', 1000);
    await commands(emu, 'status', 100);
    await take('after 1,100 more again');
    const [, , third, fourth] = points;
    const growth =
      third === undefined || fourth === undefined
        ? []
        : [...fourth.heap.by]
            .map(([name, v]) => ({
              name,
              bytes: v.size - (third.heap.by.get(name)?.size ?? 0),
              count: v.count - (third.heap.by.get(name)?.count ?? 0),
            }))
            .sort((a, b) => b.bytes - a.bytes)
            .slice(0, 8);
    return {
      heapMb: Object.fromEntries(points.map((p) => [p.name, mb(p.heap.total)])),
      rssMb: Object.fromEntries(points.map((p) => [p.name, p.rssMb])),
      heapGrowthPer1100CommandsKb:
        third === undefined || fourth === undefined
          ? null
          : Math.round((fourth.heap.total - third.heap.total) / 1024),
      largestGrowthInLast1100: growth.map(
        (g) => `${g.name}: ${Math.round(g.bytes / 1024)} KB, ${g.count} objects`,
      ),
    };
  } finally {
    await bot.stop();
    await emu.close();
    cfg.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}
