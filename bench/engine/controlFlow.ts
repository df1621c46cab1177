// The engine benchmark's control-flow scenarios, Tolstoy alone: n8n has no run of the same shape
// to compare (no loop that keeps 20 calls in flight; its Wait node keeps waits under 65 s in memory).
//   D, a loop: one execution of a flow whose one step is a forEach over `range(0, 1000)`, 20 items
//      at once, each an echo of its item, on an API node and one worker; items per second from the
//      start request to the run's completion, `rounds` times, each after one unmeasured run of the
//      same flow (none in --smoke).
//   E, sleeping runs: 1,000 runs of a 10 s sleep and a transform, started as fast as accepted, on
//      one worker of 5 slots; seconds from the first start to the last completion, and the
//      worker's RSS every 500 ms. A sleeping run holds no slot: were it held, this would take
//      1000 / 5 × 10 s = 2,000 s.
import pg from 'pg';
import type { LoadFigures, LoadPlan, Target } from './load.ts';
import { type CpuMeter, peakRssMb, sampleRss } from './processes.ts';
import { type ControlFlowSizes, completions, type Layout, ONE_WORKER, startTolstoy, type Tenant, unfinished } from './tolstoy.ts';

export interface ControlFlowPlan extends ControlFlowSizes {
  /** How many runs of the nap flow scenario E starts. */
  naps: number;
}

export function controlFlowPlan(smoke: boolean): ControlFlowPlan {
  return smoke ? { loopItems: 50, loopConcurrency: 20, napMs: 2000, naps: 50 } : { loopItems: 1000, loopConcurrency: 20, napMs: 10_000, naps: 1000 };
}

/** What the scenarios need of the benchmark's run. */
export interface Bench {
  databaseUrl: string;
  tenants: Tenant[];
  rounds: number;
  /** Whether a round begins with an unmeasured run, as the other scenarios begin with a warm-up. */
  warmUp: boolean;
  connections: number;
  plan: ControlFlowPlan;
  /** CPU of the processes named, with PostgreSQL and the echo server, over `work`. */
  measured<T>(processes: Record<string, number>, work: (meter: CpuMeter) => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }>;
  load(plan: LoadPlan): Promise<LoadFigures>;
}

const POLL_MS = 100;
// Past this, a run still unfinished counts as not completed.
const LOOP_DEADLINE_MS = 300_000;
const NAP_DRAIN_MS = 120_000;
const RSS_EVERY_MS = 500;
const NAP_SLOTS = 5;
const NAP_LAYOUT: Layout = { name: `API + 1 worker of ${NAP_SLOTS} slots`, workers: 1, concurrency: NAP_SLOTS };

/** CPU per unit of work (an item, a run) of each process, under `key`, with its peak RSS when read. */
type PerUnit<K extends string> = Record<string, Record<K, number> & { peakRssMb?: number }>;

function perUnit<K extends string>(key: K, cpu: Record<string, number>, units: number, rss: Record<string, number>): PerUnit<K> {
  return Object.fromEntries(
    Object.entries(cpu).map(([name, seconds]) => [
      name,
      { [key]: round((seconds * 1000) / Math.max(1, units), 3), ...(rss[name] === undefined ? {} : { peakRssMb: round(rss[name]!, 1) }) } as Record<K, number>,
    ]),
  );
}

function round(value: number, digits = 1): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}

async function peaks(processes: Record<string, number>): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(Object.entries(processes).map(async ([name, pid]) => [name, await peakRssMb(pid)] as const)));
}

// D ---------------------------------------------------------------------------------------------

export interface LoopRound {
  itemsPerSecond: number;
  seconds: number;
  status: string;
  /** Iterations whose echo step completed. */
  itemsCompleted: number;
  processes: PerUnit<'cpuMsPerItem'>;
}

export interface Loop extends LoopRound {
  items: number;
  concurrency: number;
  /** Items short of all, over every round. */
  itemsMissing: number;
  runs: number[];
}

export async function scenarioD(bench: Bench): Promise<Loop> {
  const rounds: LoopRound[] = [];
  for (let r = 0; r < bench.rounds; r++) {
    rounds.push(await loopRound(bench));
    console.log(`  round ${r + 1}: ${rounds[r]!.itemsPerSecond} items/s, ${rounds[r]!.itemsCompleted} items, ${rounds[r]!.status}`);
  }
  const rates = rounds.map((r) => r.itemsPerSecond).sort((a, b) => a - b);
  const middle = rounds.find((r) => r.itemsPerSecond === rates[Math.floor(rates.length / 2)])!;
  const loop = {
    items: bench.plan.loopItems,
    concurrency: bench.plan.loopConcurrency,
    ...middle,
    itemsMissing: rounds.reduce((sum, r) => sum + bench.plan.loopItems - r.itemsCompleted, 0),
    runs: rounds.map((r) => r.itemsPerSecond),
  };
  console.log(`D: ${JSON.stringify(loop)}`);
  return loop;
}

async function loopRound(bench: Bench): Promise<LoopRound> {
  const tolstoy = await startTolstoy(bench.databaseUrl, ONE_WORKER);
  try {
    const tenant = bench.tenants[0]!;
    const processes = { 'tolstoy api': tolstoy.api.pid!, 'tolstoy worker 1': tolstoy.workers[0]!.pid! };
    if (bench.warmUp) await loopEnd(bench.databaseUrl, await startExecution(tolstoy.base, tenant.key, tenant.loopFlowId));
    const { value, cpu } = await bench.measured(processes, async () => {
      const sentAt = Date.now();
      const id = await startExecution(tolstoy.base, tenant.key, tenant.loopFlowId);
      return { sentAt, end: await loopEnd(bench.databaseUrl, id) };
    });
    const seconds = ((value.end.finishedAt?.getTime() ?? Date.now()) - value.sentAt) / 1000;
    const completed = value.end.status === 'completed';
    return {
      itemsPerSecond: completed ? round(bench.plan.loopItems / seconds) : 0,
      seconds: round(seconds, 2),
      status: value.end.status,
      itemsCompleted: value.end.items,
      processes: perUnit('cpuMsPerItem', cpu, bench.plan.loopItems, await peaks(processes)),
    };
  } finally {
    await tolstoy.stop();
  }
}

/** Starts a run of the flow; its execution's id. */
async function startExecution(base: string, key: string, flowId: string): Promise<string> {
  const response = await fetch(`${base}/flows/${flowId}/executions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: '{"input":{}}',
  });
  if (response.status !== 202) throw new Error(`starting the loop answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

interface LoopEnd {
  status: string;
  finishedAt: Date | null;
  items: number;
}

/** Waits for the loop's run to end (at most LOOP_DEADLINE_MS): its status, when it ended, and its completed iterations. */
async function loopEnd(databaseUrl: string, id: string): Promise<LoopEnd> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + LOOP_DEADLINE_MS;
    for (;;) {
      const { rows } = await client.query<LoopEnd>(
        `SELECT status::text AS status, finished_at AS "finishedAt",
           (SELECT count(*)::int FROM execution_steps s
            WHERE s.execution_id = e.id AND s.path LIKE 'each[%].call' AND s.status = 'completed') AS items
         FROM executions e WHERE id = $1`,
        [id],
      );
      const end = rows[0]!;
      if (!['queued', 'running'].includes(end.status) || Date.now() > deadline) return end;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    await client.end();
  }
}

// E ---------------------------------------------------------------------------------------------

export interface Sleeping {
  runs: number;
  /** The organizations the starts were spread over. */
  organizations: number;
  sleepMs: number;
  workerConcurrency: number;
  /** Starts answered 202, and how long the starts took. */
  accepted: number;
  startSeconds: number;
  /** From the first start to the last completion. */
  seconds: number;
  completed: number;
  failed: number;
  unfinished: number;
  /** Each run's start to its end. */
  p50Ms: number;
  p99Ms: number;
  /** The worker's RSS every RSS_EVERY_MS from before the first start to after the last completion. */
  workerRssMb: { first: number; min: number; max: number; last: number; samples: number; every500Ms: number[] };
  processes: PerUnit<'cpuMsPerExecution'>;
}

export async function scenarioE(bench: Bench): Promise<Sleeping> {
  const tolstoy = await startTolstoy(bench.databaseUrl, NAP_LAYOUT);
  try {
    const worker = tolstoy.workers[0]!;
    const processes = { 'tolstoy api': tolstoy.api.pid!, 'tolstoy worker 1': worker.pid! };
    const since = new Date();
    const rss = sampleRss(worker.pid!, RSS_EVERY_MS);
    let samples: number[] = [];
    const { value: starts, cpu } = await bench
      .measured(processes, async () => {
        const starts = await bench.load({
          base: tolstoy.base,
          targets: napTargets(bench.tenants),
          seconds: NAP_DRAIN_MS / 1000,
          count: bench.plan.naps,
          connections: bench.connections,
          expect: 'accepted',
        });
        await settled(() => unfinished(bench.databaseUrl, since), bench.plan.napMs + NAP_DRAIN_MS);
        return starts;
      })
      .finally(async () => (samples = (await rss.stop()).map((mb) => round(mb, 1))));
    const done = await completions(bench.databaseUrl, since);
    const sleeping = {
      runs: bench.plan.naps,
      organizations: bench.tenants.length,
      sleepMs: bench.plan.napMs,
      workerConcurrency: NAP_SLOTS,
      accepted: starts.ok,
      startSeconds: round(starts.elapsedSeconds, 2),
      seconds: round(done.seconds, 2),
      completed: done.completed,
      failed: done.failed,
      unfinished: done.unfinished,
      p50Ms: done.p50Ms,
      p99Ms: done.p99Ms,
      workerRssMb: {
        first: samples[0]!,
        min: Math.min(...samples),
        max: Math.max(...samples),
        last: samples.at(-1)!,
        samples: samples.length,
        every500Ms: samples,
      },
      processes: perUnit('cpuMsPerExecution', cpu, done.completed, await peaks(processes)),
    };
    console.log(`E: ${JSON.stringify(sleeping)}`);
    return sleeping;
  } finally {
    await tolstoy.stop();
  }
}

/** Requests that start the nap flow, spread over the tenants. */
function napTargets(tenants: Tenant[]): Target[] {
  return tenants.map((tenant) => ({ path: `/flows/${tenant.napFlowId}/executions`, headers: { authorization: `Bearer ${tenant.key}` }, body: '{"input":{}}' }));
}

/** Waits until `count` answers 0, at most `ms`. */
async function settled(count: () => Promise<number>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await count()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
}

// Report ----------------------------------------------------------------------------------------

const check = (ok: boolean) => (ok ? '✓' : '✗');
const count = (n: number) => n.toLocaleString('en-US');

function processLine(processes: Record<string, { peakRssMb?: number }>, cpuMs: (figures: any) => number): string {
  return Object.entries(processes)
    .map(([name, p]) => `${name} ${cpuMs(p)} ms${p.peakRssMb === undefined ? '' : ` (${p.peakRssMb} MB)`}`)
    .join(', ');
}

/** The sections of ENGINE.md for D and E. */
export function controlFlowReport(loop: Loop, sleeping: Sleeping, itemsPerSecondTarget: number): string[] {
  const worker = loop.processes['tolstoy worker 1']?.peakRssMb;
  const rss = sleeping.workerRssMb;
  const heldSlots = (sleeping.runs / sleeping.workerConcurrency) * (sleeping.sleepMs / 1000);
  return [
    `## D: a loop, one execution of a ${count(loop.items)}-item forEach`,
    '',
    `Tolstoy alone: n8n has no run of the same shape to compare (no loop that keeps ${loop.concurrency} calls in flight). A flow whose one step is a \`forEach\` over \`range(0, ${loop.items})\`, ${loop.concurrency} items at once, each item one action step sending it to the echo server; API + 1 worker; from the start request to the execution's completion, after one unmeasured run of the same flow.`,
    '',
    '| items | at once | items/s | seconds | items completed | rounds, items/s | CPU per item (peak RSS) |',
    '|---:|---:|---:|---:|---:|---|---|',
    `| ${loop.items} | ${loop.concurrency} | ${loop.itemsPerSecond} | ${loop.seconds} | ${loop.itemsCompleted} ${check(loop.itemsMissing === 0)} | ${loop.runs.join(', ')} | ${processLine(loop.processes, (p) => p.cpuMsPerItem)} |`,
    '',
    `Target: at least ${itemsPerSecondTarget} items/s (${loop.itemsPerSecond} ${check(loop.itemsPerSecond >= itemsPerSecondTarget)}); the worker's peak RSS ${worker} MB.`,
    '',
    `## E: sleeping runs, ${count(sleeping.runs)} runs of a ${sleeping.sleepMs / 1000} s sleep on one worker of ${sleeping.workerConcurrency} slots`,
    '',
    `Tolstoy alone: n8n's Wait node keeps a wait under 65 s in its process, so it has no run of the same shape. ${count(sleeping.runs)} runs of a flow of two steps, a \`sleep\` of ${count(sleeping.sleepMs)} ms and a \`transform\`, started as fast as the API accepted them across ${sleeping.organizations} organizations; API + 1 worker with \`TOLSTOY_WORKER_CONCURRENCY=${sleeping.workerConcurrency}\`; the worker's RSS read every 500 ms from before the first start to after the last completion.`,
    '',
    '| runs | accepted | starts took, s | first start to last completion, s | completed | each run, p50 / p99 ms | worker RSS MB: first, min, max, last (samples) |',
    '|---:|---:|---:|---:|---:|---|---|',
    `| ${sleeping.runs} | ${sleeping.accepted} | ${sleeping.startSeconds} | ${sleeping.seconds} | ${sleeping.completed} ${check(sleeping.completed === sleeping.runs)} | ${sleeping.p50Ms} / ${sleeping.p99Ms} | ${rss.first}, ${rss.min}, ${rss.max}, ${rss.last} (${rss.samples}) |`,
    '',
    `CPU per run: ${processLine(sleeping.processes, (p) => p.cpuMsPerExecution)}.`,
    '',
    `A sleeping run holds no worker slot. Had each held its slot while it slept, ${count(sleeping.runs)} runs on ${sleeping.workerConcurrency} slots would take ${count(sleeping.runs)} / ${sleeping.workerConcurrency} × ${sleeping.sleepMs / 1000} s = ${count(heldSlots)} s; expected is about ${sleeping.sleepMs / 1000} s, the sleep plus the starting and finishing work: ${sleeping.seconds} s here.`,
  ];
}
