// `npm run bench:growth`: what more data costs Tolstoy, in one run on one embedded PostgreSQL 18
// (durable settings, as bench:engine): scenario B's throughput and the API's reads of executions
// and logs on an empty database, then again after a history of `--executions` three-step runs over
// 90 days is written in bulk (bench/growth/fill.ts), the tables' bytes per execution, and a prune
// of 80% of that history by the retention job while the API is read. Writes
// bench/results/growth.json and bench/GROWTH.md; `--smoke` (a few thousand executions, seconds per
// step) writes reports/bench-growth-smoke.json instead. Options: --executions <n> (1000000),
// --duration <s> (10), --rounds <n> (3), --requests <n> per read (1500), --tenants <n> (20).
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { applyMigrations } from '../../src/db/migrations.ts';
import type { LoadFigures, LoadPlan } from '../engine/load.ts';
import { metered } from '../engine/processes.ts';
import { chainTargets, completions, ONE_WORKER, SINGLE, startTolstoy, unfinished } from '../engine/tolstoy.ts';
import { explain } from './explain.ts';
import { type FillFigures, fillHistory } from './fill.ts';
import { freeSpaceReadable, prune, sizesOf } from './prune.ts';
import { type Latency, probesOf, READS, type Read, timeRead } from './reads.ts';
import { growthReport, misses, TARGETS } from './report.ts';
import { type GrowthTenant, setUpGrowthTenants } from './tenants.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { values: options } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    executions: { type: 'string', default: '1000000' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '1500' },
    tenants: { type: 'string', default: '20' },
  },
});
const smoke = options.smoke!;
const settings = {
  executions: smoke ? 4000 : Number(options.executions),
  days: 90,
  retentionDays: 18,
  seconds: smoke ? 2 : Number(options.duration),
  warmupSeconds: smoke ? 0 : 3,
  rounds: smoke ? 1 : Number(options.rounds),
  connections: smoke ? 4 : 32,
  requests: smoke ? 30 : Number(options.requests),
  readConnections: 4,
  tenants: smoke ? 2 : Number(options.tenants),
  batch: 25_000,
  smoke,
};
const DRAIN_MS = 90_000;

console.log('Building Tolstoy …');
await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: ROOT });
const dataDir = join(os.tmpdir(), `tolstoy-bench-growth-${randomUUID()}`);
const database = await startEmbeddedPostgres({ dataDir, ephemeral: false });
const postmaster = Number((await readFile(join(database.dataDir, 'postmaster.pid'), 'utf8').catch(() => '0')).split('\n')[0]);
const echoPort = await freePort();
const echo = spawn(process.execPath, ['bench/engine/echo.ts', String(echoPort)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
const echoUrl = `http://127.0.0.1:${echoPort}`;
const client = new pg.Client({ connectionString: database.url });
// The server stops before the process ends: a connection it ends is no error of the benchmark's.
client.on('error', () => {});
let failed = false;
try {
  await new Promise((resolve) => echo.stdout!.once('data', resolve));
  await client.connect();
  // Two databases on the one server: one stays empty, one gets the history; they are measured
  // alternately, so that neither always meets a busier machine.
  const empty = await side('empty', database.url);
  await client.query('CREATE DATABASE tolstoy_full');
  const full = await side('full', Object.assign(new URL(database.url), { pathname: '/tolstoy_full' }).toString());
  console.log(`Filling ${settings.executions} executions …`);
  const fillClient = new pg.Client({ connectionString: full.url });
  fillClient.on('error', () => {});
  await fillClient.connect();
  const fillPlan = { executions: settings.executions, days: settings.days, batch: settings.batch, echoUrl };
  const fill: FillFigures = await fillHistory(fillClient, full.tenants, fillPlan, (done) => console.log(`  ${done} executions written`));
  console.log(`fill: ${JSON.stringify(fill)}`);
  await freeSpaceReadable(fillClient);
  const sizes = await sizesOf(fillClient);
  const throughput = await scenarioB([empty, full]);
  const reads = await timeSides([empty, full]);
  const measured = async (s: Side) => ({
    throughput: throughput[s.name]!,
    reads: reads[s.name]!,
    rows: await executionCount(s.url),
  });
  const emptyFigures = await measured(empty);
  const fullFigures = await measured(full);
  const probes = await probesOf(full.url, full.readers);
  const plans: Partial<Record<Read, string>> = {};
  for (const read of misses(emptyFigures.reads, fullFigures.reads)) plans[read] = await explain(full.url, read, probes[0]!);
  // The prune's reads name executions it keeps (those of the last days): a removed one answers 404.
  const kept = await probesOf(full.url, full.readers, new Date(Date.now() - (settings.retentionDays - 1) * 24 * 3600_000));
  const pruned = await withTolstoy(full.url, (base) => prune(full.url, base, kept, settings.retentionDays, settings.readConnections, smoke ? 3 : 15));
  console.log(`prune: ${JSON.stringify(pruned)}`);
  await fillClient.end();

  const results = {
    date: new Date().toISOString(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`,
    },
    versions: { node: process.versions.node, postgresql: '18 (embedded, durable settings)' },
    settings,
    targets: TARGETS,
    empty: emptyFigures,
    fill,
    sizes,
    full: fullFigures,
    explain: plans,
    prune: pruned,
  };
  const incomplete = [emptyFigures, fullFigures].some((f) => f.throughput.errors > 0 || READS.some((read) => f.reads[read].errors > 0));
  if (incomplete) failed = failed || smoke;
  if (smoke) {
    await mkdir(join(ROOT, 'reports'), { recursive: true });
    await writeFile(join(ROOT, 'reports', 'bench-growth-smoke.json'), JSON.stringify(results, null, 2));
    console.log('The growth benchmark works: reports/bench-growth-smoke.json');
  } else {
    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
    await writeFile(join(ROOT, 'bench', 'results', 'growth.json'), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(join(ROOT, 'bench', 'GROWTH.md'), growthReport(results));
    console.log('Wrote bench/results/growth.json and bench/GROWTH.md');
  }
} catch (error) {
  console.error((error as Error).stack);
  failed = true;
} finally {
  echo.kill();
  await client.end().catch(() => {});
  await database.stop();
  await rm(database.dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

interface Side {
  name: 'empty' | 'full';
  url: string;
  tenants: GrowthTenant[];
  readers: { key: string; orgId: string; flowId: string }[];
}

/** A database migrated, with its organizations set up through the API. */
async function side(name: Side['name'], url: string): Promise<Side> {
  await applyMigrations(url);
  const setup = await startTolstoy(url, SINGLE);
  const tenants = await setUpGrowthTenants(setup.base, echoUrl, url, settings.tenants).finally(() => setup.stop());
  return { name, url, tenants, readers: tenants.map((tenant) => ({ key: tenant.key, orgId: tenant.orgId, flowId: tenant.chainFlowId })) };
}

async function executionCount(url: string): Promise<number> {
  const counter = new pg.Client({ connectionString: url });
  await counter.connect();
  try {
    return Number((await counter.query('SELECT count(*) AS n FROM executions')).rows[0].n);
  } finally {
    await counter.end();
  }
}

/** Tolstoy as scenario B runs it (the API and one worker process) on a database, for `work`. */
async function withTolstoy<T>(url: string, work: (base: string, processes: Record<string, number>) => Promise<T>): Promise<T> {
  const tolstoy = await startTolstoy(url, ONE_WORKER);
  try {
    return await work(tolstoy.base, { 'tolstoy api': tolstoy.api.pid!, 'tolstoy worker': tolstoy.workers[0]!.pid! });
  } finally {
    await tolstoy.stop();
  }
}

/** Each read on each database, the databases taking turns (and turns about who goes first). */
async function timeSides(sides: Side[]): Promise<Record<string, Record<Read, Latency>>> {
  const running = await Promise.all(sides.map((s) => startTolstoy(s.url, ONE_WORKER)));
  try {
    const probes = await Promise.all(sides.map((s) => probesOf(s.url, s.readers)));
    const figures: Record<string, Partial<Record<Read, Latency>>> = Object.fromEntries(sides.map((s) => [s.name, {}]));
    for (const [r, read] of READS.entries()) {
      for (let i = 0; i < sides.length; i++) {
        const k = (i + r) % sides.length;
        figures[sides[k]!.name]![read] = await timeRead(running[k]!.base, probes[k]!, read, settings.requests, settings.readConnections);
      }
      console.log(`  ${read}: ${sides.map((s) => `${s.name} p50 ${figures[s.name]![read]!.p50Ms} p99 ${figures[s.name]![read]!.p99Ms} ms`).join(', ')}`);
    }
    return figures as Record<string, Record<Read, Latency>>;
  } finally {
    await Promise.all(running.map((tolstoy) => tolstoy.stop()));
  }
}

/** Runs bench/engine's load generator, in a process of its own. */
function load(plan: LoadPlan): Promise<LoadFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/engine/load.ts', JSON.stringify(plan)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the load generator failed (${code})`))));
  });
}

async function drained(url: string, since: Date): Promise<void> {
  const deadline = Date.now() + DRAIN_MS;
  while ((await unfinished(url, since)) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
}

export interface Throughput {
  executionsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  completed: number;
  /** Every round's completions per second; the figures above are the median round's. */
  rounds: number[];
  cpuMsPerExecution: Record<string, number>;
}

/** One round of scenario B as bench:engine runs it: closed loop, start to finish. */
async function chainRound(s: Side): Promise<Throughput> {
  const targets = chainTargets(s.tenants);
  return withTolstoy(s.url, async (base, processes) => {
    if (settings.warmupSeconds > 0) {
      const warm = new Date();
      await load({ base, targets, seconds: settings.warmupSeconds, connections: settings.connections, rate: 20, expect: 'accepted' });
      await drained(s.url, warm);
    }
    const since = new Date();
    const { value, cpu } = await metered({ ...processes, postgresql: postmaster, echo: echo.pid! }, async () => {
      const figures = await load({ base, targets, seconds: settings.seconds, connections: settings.connections, expect: 'accepted' });
      await drained(s.url, since);
      return figures;
    });
    const done = await completions(s.url, since);
    return {
      executionsPerSecond: Math.round(done.perSecond * 10) / 10,
      p50Ms: done.p50Ms,
      p99Ms: done.p99Ms,
      errors: value.sent - value.ok + done.failed + done.unfinished,
      completed: done.completed,
      rounds: [],
      cpuMsPerExecution: Object.fromEntries(
        Object.entries({ ...cpu, load: value.cpuSeconds }).map(([name, seconds]) => [name, Math.round((seconds * 1e6) / Math.max(1, done.completed)) / 1000]),
      ),
    };
  });
}

/** `rounds` rounds of B on each database, taking turns: the median round of each. */
async function scenarioB(sides: Side[]): Promise<Record<string, Throughput>> {
  const runs: Record<string, Throughput[]> = Object.fromEntries(sides.map((s) => [s.name, []]));
  for (let round = 0; round < settings.rounds; round++) {
    for (let i = 0; i < sides.length; i++) {
      const s = sides[(i + round) % sides.length]!;
      const figures = await chainRound(s);
      runs[s.name]!.push(figures);
      console.log(
        `  B round ${round + 1}, ${s.name}: ${figures.executionsPerSecond}/s, p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, errors ${figures.errors}`,
      );
    }
  }
  return Object.fromEntries(
    Object.entries(runs).map(([name, list]) => {
      const rates = list.map((run) => run.executionsPerSecond).sort((a, b) => a - b);
      const middle = list.find((run) => run.executionsPerSecond === rates[Math.floor(rates.length / 2)])!;
      return [name, { ...middle, errors: list.reduce((sum, run) => sum + run.errors, 0), rounds: list.map((run) => run.executionsPerSecond) }];
    }),
  );
}
