// `npm run bench:engine`: Tolstoy's engine against n8n, DBOS and Restate, side by side in one run,
// one system at a time and alternately, on one PostgreSQL (Restate on its own storage), calling
// one local JSON echo server; the load comes from a process of its own (bench/engine/load.ts).
// Writes bench/results/engine.json and bench/ENGINE.md. n8n is installed on demand into
// bench/engine/.n8n and Restate into bench/engine/.restate (bench/engine/restate.ts); a peer that
// cannot be installed or run is left out and the report says why. DBOS (bench/engine/dbos.ts) is a
// devDependency, installed by npm ci: its app serves the same starts over HTTP as a process of its
// own (A and B).
//   A, synchronous: a one-step flow that echoes the trigger's input, answered when finished
//      (Tolstoy: Prefer: wait; n8n: Webhook answered by its last node; DBOS: the workflow awaited
//      in the request's handler; Restate: an ingress call answered when its handler finished),
//      same connections.
//   B, throughput: a three-step flow, each step templating what the one before received, started
//      as fast as the system accepts; completions per second and start-to-finish latency, then the
//      latency at half that rate. Tolstoy with one worker process, then two.
//   C, crash: B at half rate with a worker killed (SIGKILL) every few seconds and started again:
//      executions lost and completed steps repeated.
//   D, a loop, and E, sleeping runs: Tolstoy alone (bench/engine/controlFlow.ts).
// `npm run bench:engine -- --smoke` runs every scenario for a second or two (part of npm test),
// DBOS always, n8n and Restate only when they are installed already. Options: --duration <s> (10),
// --rounds <n> (3), --connections <n> (32), --tenants <n> (8), --no-n8n, --no-dbos, --no-restate,
// --scenarios A,B,C,D,E (a part only: its figures replace theirs in bench/results/engine.json, and
// the report says when each part ran).
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { applyMigrations } from '../../src/db/migrations.ts';
import { type Bench, controlFlowPlan, type Loop, type Sleeping, scenarioD, scenarioE } from './controlFlow.ts';
import { DBOS_VERSION, type DbosSetup, dbosChainTargets, dbosCompletions, dbosSyncTargets, setUpDbos, startDbos } from './dbos.ts';
import type { LoadFigures, LoadPlan, Target } from './load.ts';
import { installN8n, N8N_VERSION, type N8nSetup, n8nChainTargets, n8nCompletions, n8nInstalled, n8nSyncTargets, setUpN8n, startN8n } from './n8n.ts';
import { type CpuMeter, metered, peakRssMb } from './processes.ts';
import { ratioKey, report, SCENARIOS, type Scenario, TARGETS, withPart } from './report.ts';
import {
  installRestate,
  RESTATE_SDK_VERSION,
  RESTATE_SERVER_VERSION,
  type RestateSetup,
  type RunningRestate,
  restateChainTargets,
  restateCompletions,
  restateInstalled,
  restateSyncTargets,
  restateUnfinished,
  setUpRestate,
  startRestate,
} from './restate.ts';
import {
  type Completion,
  chainTargets,
  completions,
  durability,
  type Layout,
  ONE_WORKER,
  SINGLE,
  setUpTenants,
  startTolstoy,
  syncTargets,
  type Tenant,
  TWO_WORKERS,
  unfinished,
} from './tolstoy.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const { values: options } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    tenants: { type: 'string', default: '8' },
    'no-n8n': { type: 'boolean', default: false },
    'no-dbos': { type: 'boolean', default: false },
    'no-restate': { type: 'boolean', default: false },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
  },
});
const chosen = new Set(options.scenarios!.split(',') as Scenario[]);
const smoke = options.smoke!;
const seconds = smoke ? 2 : Number(options.duration);
const rounds = smoke ? 1 : Number(options.rounds);
const connections = smoke ? 4 : Number(options.connections);
const tenantCount = smoke ? 2 : Number(options.tenants);
const warmupSeconds = smoke ? 0 : 3;
// How long runs may take to finish after the load stops: a killed worker's runs resume within about 20 s.
const DRAIN_MS = 90_000;
const KILL_EVERY_MS = smoke ? 1500 : 3000;
const plan = controlFlowPlan(smoke);

interface ProcessFigures {
  cpuMsPerExecution: number;
  peakRssMb?: number;
}

interface Figures {
  executionsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  executions: number;
  processes: Record<string, ProcessFigures>;
}

/** The peers ready to start; one left out (not installed, or not wanted) is undefined. */
interface Peers {
  n8n?: N8nSetup;
  dbos?: DbosSetup;
  restate?: RestateSetup;
}

const run = promisify(execFile);
console.log('Building Tolstoy …');
await run('npm', ['run', '--silent', 'build'], { cwd: ROOT });

const dataDir = join(os.tmpdir(), `tolstoy-bench-engine-${randomUUID()}`);
// Durable, as in production: each commit is flushed.
const database = await startEmbeddedPostgres({ dataDir, ephemeral: false });
// Restate's own storage, beside PostgreSQL's and removed with it.
const restateDir = `${dataDir}-restate`;
const postmaster = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '0')).split('\n')[0]);
const echoPort = await freePort();
const echo = spawn(process.execPath, ['bench/engine/echo.ts', String(echoPort)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
const echoUrl = `http://127.0.0.1:${echoPort}`;
let failed = false;
const notes: string[] = [];
try {
  await new Promise((resolve) => echo.stdout!.once('data', resolve));
  await applyMigrations(database.url);
  const setup = await startTolstoy(database.url, SINGLE);
  const tenants = await setUpTenants(setup.base, echoUrl, tenantCount, plan).finally(() => setup.stop());
  const bench: Bench = { databaseUrl: database.url, tenants, rounds, warmUp: warmupSeconds > 0, connections, plan, measured, load };
  const peers: Peers = { n8n: await n8nPeer(), dbos: await dbosPeer(), restate: await restatePeer() };
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    versions: {
      node: process.versions.node,
      postgresql: '18 (embedded, durable settings)',
      n8n: peers.n8n ? N8N_VERSION : null,
      dbos: peers.dbos ? DBOS_VERSION : null,
      restate: peers.restate ? `${RESTATE_SERVER_VERSION} (SDK ${RESTATE_SDK_VERSION})` : null,
    },
    settings: { seconds, warmupSeconds, rounds, connections, tenants: tenantCount, smoke },
    targets: TARGETS,
    notes,
    synchronous: chosen.has('A') ? await scenarioA(tenants, peers) : undefined,
    throughput: chosen.has('B') ? await scenarioB(tenants, peers) : undefined,
    crash: undefined as unknown,
    loop: undefined as Loop | undefined,
    sleeping: undefined as Sleeping | undefined,
  };
  if (chosen.has('C')) results.crash = await scenarioC(tenants, peers.n8n, (results.throughput as any)?.tolstoy[TWO_WORKERS.name].executionsPerSecond ?? 100);
  if (chosen.has('D')) results.loop = await scenarioD(bench);
  if (chosen.has('E')) results.sleeping = await scenarioE(bench);
  results.machine.loadAverage.end = loadAverage();
  if ((results.loop?.itemsMissing ?? 0) > 0 || (results.sleeping && results.sleeping.completed < plan.naps)) failed = failed || smoke;
  const part = SCENARIOS.filter((scenario) => chosen.has(scenario));
  const whole = smoke ? undefined : part.length === SCENARIOS.length ? results : withPart(await earlierResults(), results, part);
  if (!whole) {
    await mkdir(join(ROOT, 'reports'), { recursive: true });
    await writeFile(join(ROOT, 'reports', 'bench-engine-smoke.json'), JSON.stringify(results, null, 2));
    console.log(
      `The engine benchmark works: reports/bench-engine-smoke.json${smoke ? '' : ' (no report: bench/results/engine.json lacks the other scenarios)'}`,
    );
  } else {
    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
    await writeFile(join(ROOT, 'bench', 'results', 'engine.json'), `${JSON.stringify(whole, null, 2)}\n`);
    await writeFile(join(ROOT, 'bench', 'ENGINE.md'), report(whole));
    console.log('Wrote bench/results/engine.json and bench/ENGINE.md');
  }
} catch (error) {
  console.error((error as Error).stack);
  failed = true;
} finally {
  echo.kill();
  await database.stop();
  await rm(dataDir, { recursive: true, force: true });
  await rm(restateDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

/** n8n ready to start, or undefined (and a note saying why). */
async function n8nPeer(): Promise<N8nSetup | undefined> {
  if (options['no-n8n']) return note('n8n was not run (--no-n8n).');
  if (smoke && !n8nInstalled()) return note('n8n is not installed (npm run bench:engine installs it), so the smoke run leaves it out.');
  const reason = await installN8n();
  if (reason) return note(`n8n could not be installed, so it was left out: ${reason}`);
  const server = new URL(database.url);
  server.pathname = '/postgres';
  return setUpN8n(server.toString(), echoUrl);
}

/** DBOS ready to start, or undefined (and a note saying why). */
async function dbosPeer(): Promise<DbosSetup | undefined> {
  if (options['no-dbos']) return note('DBOS was not run (--no-dbos).');
  const server = new URL(database.url);
  server.pathname = '/postgres';
  return setUpDbos(server.toString(), echoUrl);
}

/** Restate ready to start (installed, and started once to register its endpoint), or undefined (and a note saying why). */
async function restatePeer(): Promise<RestateSetup | undefined> {
  if (options['no-restate']) return note('Restate was not run (--no-restate).');
  if (smoke && !restateInstalled()) return note('Restate is not installed (npm run bench:engine installs it), so the smoke run leaves it out.');
  const reason = await installRestate();
  if (reason) return note(`Restate could not be installed, so it was left out: ${reason}`);
  const setup = await setUpRestate(restateDir, echoUrl);
  const trial = await startRestate(setup).catch((error: Error) => error);
  if (trial instanceof Error) {
    const why = trial.message.split('\n').filter((line) => line.trim() !== '');
    return note(`Restate could not be run, so it was left out: ${why.slice(0, 4).join(' ')}`);
  }
  await trial.stop();
  return setup;
}

/** Each peer's figures over Tolstoy's (as `tolstoyVs<Peer>`). */
function ratios(tolstoy: number, peers: Record<string, Figures>): Record<string, number> {
  return Object.fromEntries(Object.entries(peers).map(([name, figures]) => [ratioKey(name), round(tolstoy / figures.executionsPerSecond, 2)]));
}

function note(text: string): undefined {
  console.log(text);
  notes.push(text);
  return undefined;
}

/** Runs the load generator, in a process of its own. */
function load(plan: LoadPlan): Promise<LoadFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/engine/load.ts', JSON.stringify(plan)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the load generator failed (${code})`))));
  });
}

/** Measures CPU of the system's processes, PostgreSQL, the echo server and the load generator over `work`. */
function measured<T>(processes: Record<string, number>, work: (meter: CpuMeter) => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }> {
  return metered({ ...processes, postgresql: postmaster, echo: echo.pid! }, work);
}

function perExecution(cpu: Record<string, number>, executions: number, rss: Record<string, number> = {}): Record<string, ProcessFigures> {
  return Object.fromEntries(
    Object.entries(cpu).map(([name, seconds]) => [
      name,
      { cpuMsPerExecution: round((seconds * 1000) / Math.max(1, executions), 3), ...(rss[name] === undefined ? {} : { peakRssMb: round(rss[name]!, 1) }) },
    ]),
  );
}

function round(value: number, digits = 1): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
}

// A ---------------------------------------------------------------------------------------------

async function scenarioA(tenants: Tenant[], { n8n, dbos, restate }: Peers) {
  const systems: Record<string, () => Promise<Figures>> = { tolstoy: () => syncTolstoy(tenants) };
  if (n8n) systems.n8n = () => syncN8n(n8n);
  if (dbos) systems.dbos = () => syncDbos(dbos);
  if (restate) systems.restate = () => syncRestate(restate);
  const runs = await alternate(systems);
  const { tolstoy, ...others } = summarizeRuns(runs);
  const summary = { tolstoy, ...others, ...ratios(tolstoy.executionsPerSecond, others) };
  console.log(`A: ${JSON.stringify(summary)}`);
  return summary;
}

async function syncRound(targets: Target[], expect: LoadPlan['expect'], base: string, processes: Record<string, number>): Promise<Figures> {
  if (warmupSeconds > 0) await load({ base, targets, seconds: warmupSeconds, connections, expect });
  const { value: figures, cpu } = await measured(processes, () => load({ base, targets, seconds, connections, expect }));
  cpu.load = figures.cpuSeconds;
  const rss = Object.fromEntries(await Promise.all(Object.entries(processes).map(async ([name, pid]) => [name, await peakRssMb(pid)] as const)));
  if (figures.ok < figures.sent) failed = failed || smoke;
  return {
    executionsPerSecond: round(figures.ok / figures.elapsedSeconds),
    p50Ms: figures.p50Ms,
    p99Ms: figures.p99Ms,
    errors: figures.sent - figures.ok,
    executions: figures.ok,
    processes: perExecution(cpu, figures.ok, rss),
    ...(Object.keys(figures.failures).length > 0 ? { failures: figures.failures } : {}),
  };
}

async function syncTolstoy(tenants: Tenant[]): Promise<Figures> {
  const tolstoy = await startTolstoy(database.url, SINGLE);
  try {
    return await syncRound(syncTargets(tenants), 'tolstoy-finished', tolstoy.base, { tolstoy: tolstoy.api.pid! });
  } finally {
    await tolstoy.stop();
  }
}

async function syncN8n(setup: N8nSetup): Promise<Figures> {
  const n8n = await startN8n(setup);
  try {
    return await syncRound(n8nSyncTargets(), 'n8n-finished', n8n.base, { n8n: n8n.process.pid! });
  } finally {
    await n8n.stop();
  }
}

async function syncDbos(setup: DbosSetup): Promise<Figures> {
  const dbos = await startDbos(setup);
  try {
    return await syncRound(dbosSyncTargets(), 'dbos-finished', dbos.base, { dbos: dbos.process.pid! });
  } finally {
    await dbos.stop();
  }
}

async function syncRestate(setup: RestateSetup): Promise<Figures> {
  const restate = await startRestate(setup);
  try {
    return await syncRound(restateSyncTargets(), 'restate-finished', restate.base, restateProcesses(restate));
  } finally {
    await restate.stop();
  }
}

function restateProcesses(restate: RunningRestate): Record<string, number> {
  return { 'restate-server': restate.server.pid!, 'restate endpoint': restate.endpoint.pid! };
}

/** Each system once per round, the order turning each round so none always meets a warmer machine. */
async function alternate(systems: Record<string, () => Promise<Figures>>): Promise<Record<string, Figures[]>> {
  const names = Object.keys(systems);
  const runs: Record<string, Figures[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]!;
      const figures = await systems[name]!();
      runs[name]!.push(figures);
      console.log(
        `  round ${r + 1} ${name}: ${figures.executionsPerSecond} executions/s, p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, errors ${figures.errors}`,
      );
    }
  }
  return runs;
}

function summarizeRuns(runs: Record<string, Figures[]>): Record<string, any> {
  return Object.fromEntries(
    Object.entries(runs).map(([name, list]) => {
      const middle = list.find((f) => f.executionsPerSecond === median(list.map((g) => g.executionsPerSecond)))!;
      return [name, { ...middle, errors: list.reduce((sum, f) => sum + f.errors, 0), runs: list.map((f) => f.executionsPerSecond) }];
    }),
  );
}

// B ---------------------------------------------------------------------------------------------

interface Throughput extends Figures {
  /** The rate of the second, paced run (half the one measured), and the latency it met. */
  halfRate: { startsPerSecond: number; p50Ms: number; p99Ms: number; unfinished: number };
}

async function scenarioB(tenants: Tenant[], { n8n, dbos, restate }: Peers) {
  const tolstoy: Record<string, Throughput> = {};
  for (const layout of [ONE_WORKER, TWO_WORKERS]) {
    const runs: Throughput[] = [];
    for (let r = 0; r < rounds; r++) runs.push(await chainTolstoy(tenants, layout));
    tolstoy[layout.name] = middleOf(runs);
    console.log(`B: Tolstoy, ${layout.name}: ${JSON.stringify(tolstoy[layout.name])}`);
  }
  const peers: Record<string, Throughput> = {};
  if (n8n) peers.n8n = await peerThroughput('n8n', () => chainN8n(n8n));
  if (dbos) peers.dbos = await peerThroughput('dbos', () => chainDbos(dbos));
  if (restate) peers.restate = await peerThroughput('restate', () => chainRestate(restate));
  // Against Tolstoy with one worker process, as n8n's ratio has always been.
  return { tolstoy, ...peers, ...ratios(tolstoy[ONE_WORKER.name]!.executionsPerSecond, peers) };
}

/** A peer's middle round of B. */
async function peerThroughput(name: string, round: () => Promise<Throughput>): Promise<Throughput> {
  const runs: Throughput[] = [];
  for (let r = 0; r < rounds; r++) runs.push(await round());
  const figures = middleOf(runs);
  console.log(`B: ${name}: ${JSON.stringify(figures)}`);
  return figures;
}

function middleOf(runs: Throughput[]): Throughput {
  const rate = median(runs.map((r) => r.executionsPerSecond));
  return { ...runs.find((r) => r.executionsPerSecond === rate)!, errors: runs.reduce((sum, r) => sum + r.errors, 0) };
}

/** Waits until nothing started since `since` is left unfinished, at most DRAIN_MS. */
async function drained(count: () => Promise<number>): Promise<void> {
  const deadline = Date.now() + DRAIN_MS;
  while ((await count()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
}

async function chainRound(
  base: string,
  targets: Target[],
  processes: Record<string, number>,
  finished: (since: Date) => Promise<Completion>,
  pending: (since: Date) => Promise<number>,
): Promise<Throughput> {
  if (warmupSeconds > 0) {
    await load({ base, targets, seconds: warmupSeconds, connections, rate: 20, expect: 'accepted' });
    const warm = new Date(0);
    await drained(() => pending(warm));
  }
  const since = new Date();
  const { value, cpu } = await measured(processes, async () => {
    const figures = await load({ base, targets, seconds, connections, expect: 'accepted' });
    await drained(() => pending(since));
    return figures;
  });
  cpu.load = value.cpuSeconds;
  const done = await finished(since);
  const rss = Object.fromEntries(await Promise.all(Object.entries(processes).map(async ([name, pid]) => [name, await peakRssMb(pid)] as const)));
  // The same system again, at half the rate it completed: the latency of a system that keeps up.
  const halfRate = Math.max(1, Math.round(done.perSecond / 2));
  const paced = new Date();
  const pacedFigures = await load({ base, targets, seconds, connections: 512, rate: halfRate, expect: 'accepted' });
  await drained(() => pending(paced));
  const half = await finished(paced);
  const errors = value.sent - value.ok + (pacedFigures.sent - pacedFigures.ok) + done.failed + done.unfinished + half.failed + half.unfinished;
  if (errors > 0) failed = failed || smoke;
  return {
    executionsPerSecond: round(done.perSecond),
    p50Ms: done.p50Ms,
    p99Ms: done.p99Ms,
    errors,
    executions: done.completed,
    processes: perExecution(cpu, done.completed, rss),
    halfRate: { startsPerSecond: halfRate, p50Ms: half.p50Ms, p99Ms: half.p99Ms, unfinished: half.unfinished },
  };
}

async function chainTolstoy(tenants: Tenant[], layout: Layout): Promise<Throughput> {
  const tolstoy = await startTolstoy(database.url, layout);
  try {
    const processes = { 'tolstoy api': tolstoy.api.pid!, ...Object.fromEntries(tolstoy.workers.map((w, i) => [`tolstoy worker ${i + 1}`, w.pid!])) };
    return await chainRound(
      tolstoy.base,
      chainTargets(tenants),
      processes,
      (since) => completions(database.url, since),
      (since) => unfinished(database.url, since),
    );
  } finally {
    await tolstoy.stop();
  }
}

async function chainN8n(setup: N8nSetup): Promise<Throughput> {
  const n8n = await startN8n(setup);
  try {
    return await chainRound(
      n8n.base,
      n8nChainTargets(),
      { n8n: n8n.process.pid! },
      (since) => n8nCompletions(setup.databaseUrl, since),
      async (since) => (await n8nCompletions(setup.databaseUrl, since)).unfinished,
    );
  } finally {
    await n8n.stop();
  }
}

async function chainDbos(setup: DbosSetup): Promise<Throughput> {
  const dbos = await startDbos(setup);
  try {
    return await chainRound(
      dbos.base,
      dbosChainTargets(),
      { dbos: dbos.process.pid! },
      (since) => dbosCompletions(setup.databaseUrl, since),
      async (since) => (await dbosCompletions(setup.databaseUrl, since)).unfinished,
    );
  } finally {
    await dbos.stop();
  }
}

async function chainRestate(setup: RestateSetup): Promise<Throughput> {
  const restate = await startRestate(setup);
  try {
    return await chainRound(
      restate.base,
      restateChainTargets(),
      restateProcesses(restate),
      (since) => restateCompletions(restate.admin, since),
      (since) => restateUnfinished(restate.admin, since),
    );
  } finally {
    await restate.stop();
  }
}

// C ---------------------------------------------------------------------------------------------

async function scenarioC(tenants: Tenant[], _n8n: N8nSetup | undefined, twoWorkerRate: number) {
  const rate = Math.max(2, Math.round(twoWorkerRate / 2));
  const tolstoy = await startTolstoy(database.url, TWO_WORKERS);
  const stats = async () => (await (await fetch(`${echoUrl}/__stats`)).json()) as { resent: number };
  const resentBefore = (await stats()).resent;
  let kills = 0;
  try {
    const since = new Date();
    const processes = { 'tolstoy api': tolstoy.api.pid!, 'tolstoy worker 1': tolstoy.workers[0]!.pid!, 'tolstoy worker 2': tolstoy.workers[1]!.pid! };
    const { value: figures, cpu } = await measured(processes, async (meter) => {
      const killing = setInterval(async () => {
        const index = kills++ % 2;
        const name = `tolstoy worker ${index + 1}`;
        await meter.read(name, tolstoy.workers[index]!.pid!);
        const replacement = await tolstoy.replaceWorker(index);
        await meter.read(name, replacement.pid!);
      }, KILL_EVERY_MS);
      const figures = await load({
        base: tolstoy.base,
        targets: chainTargets(tenants),
        seconds: Math.max(seconds, 4),
        connections: 512,
        rate,
        expect: 'accepted',
        collectIds: true,
      }).finally(() => clearInterval(killing));
      await drained(() => unfinished(database.url, since));
      for (const [index, worker] of tolstoy.workers.entries()) await meter.read(`tolstoy worker ${index + 1}`, worker.pid!);
      return figures;
    });
    const ids = figures.started.map((start) => start.id);
    const outcome = await durability(database.url, ids);
    const done = await completions(database.url, since);
    const result = {
      startsPerSecond: rate,
      workersKilled: kills,
      accepted: ids.length,
      lost: outcome.lost,
      completedStepsRepeated: outcome.completedStepsRepeated,
      // Steps whose outcome a kill left unknown, sent again with the same Idempotency-Key (allowed, and counted).
      stepsResent: (await stats()).resent - resentBefore,
      p50Ms: done.p50Ms,
      p99Ms: done.p99Ms,
      errors: figures.sent - figures.ok,
      processes: perExecution(cpu, done.completed),
    };
    if (result.lost > 0 || result.completedStepsRepeated > 0 || result.errors > 0) failed = failed || smoke;
    console.log(`C: ${JSON.stringify(result)}`);
    return { tolstoy: result };
  } finally {
    await tolstoy.stop();
  }
}

// Report ----------------------------------------------------------------------------------------

function machine() {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    // Other work on the machine shares its cores with the benchmark: its load when the run began and ended.
    loadAverage: { start: loadAverage(), end: 0 },
  };
}

/** The results of the last full run (with the parts run since), if any. */
async function earlierResults(): Promise<any> {
  return JSON.parse(await readFile(join(ROOT, 'bench', 'results', 'engine.json'), 'utf8').catch(() => '{}'));
}

/** The one-minute load average. */
function loadAverage(): number {
  return round(os.loadavg()[0]!, 2);
}
