// `npm run bench`: Tolstoy against the floor of a Node service (Fastify + pg) and against the
// stack of the original Tolstoy (NestJS + Prisma), side by side in one run, on one throwaway
// PostgreSQL with the same data. Writes bench/results/latest.json and bench/RESULTS.md.
// `npm run bench -- --smoke` checks the harness in seconds (part of npm test): the systems
// answer alike, and every scenario runs against every system without errors.
// Options: --duration <seconds> (5), --rounds <n> (3), --connections <n> (32).
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { applyMigrations } from '../src/db/migrations.ts';
import { metered } from './engine/processes.ts';
import { differences, equivalenceRequests } from './equivalence.ts';
import type { LoadResult } from './load.ts';
import { SCENARIOS } from './scenarios.ts';
import { FULL, type Scale, SMOKE, seed } from './seed.ts';
import { SYSTEMS, type SystemName, startSystem } from './systems.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NAMES = Object.keys(SYSTEMS) as SystemName[];
const WARMUP_SECONDS = 2;

const WRITES = ['createTool', 'updateFlow'];
export const TARGETS = { readsVsRaw: 0.9, writesVsRaw: 0.8, rpsVsNest: 1.5, p99VsRaw: 1.5, rssMb: 200 };

interface Figures extends LoadResult {
  rssMb: number;
  /** CPU time per request of the server's process, and of PostgreSQL, in microseconds. */
  serverCpuUs: number;
  postgresCpuUs: number;
}

const { values: options } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    duration: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
  },
});
const smoke = options.smoke!;
const duration = smoke ? 1 : Number(options.duration);
const rounds = smoke ? 1 : Number(options.rounds);
const connections = smoke ? 4 : Number(options.connections);
const scale: Scale = smoke ? SMOKE : FULL;

const run = promisify(execFile);
console.log('Building Tolstoy and the NestJS peer …');
await run('npm', ['run', '--silent', 'build'], { cwd: ROOT });
await run(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'bench/nest/tsconfig.json'], { cwd: ROOT });

const database = await startEmbeddedPostgres({ dataDir: join(os.tmpdir(), `tolstoy-bench-${randomUUID()}`), ephemeral: true });
const postmaster = Number((await readFile(join(database.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
let failed = false;
try {
  await applyMigrations(database.url);
  console.log(`Seeding ${JSON.stringify(scale)} …`);
  const fixture = await seed(database.url, scale);
  const fixtureFile = join(os.tmpdir(), `tolstoy-bench-fixture-${randomUUID()}.json`);
  await writeFile(fixtureFile, JSON.stringify({ tenants: fixture.tenants }));

  const systems = await Promise.all(NAMES.map((name) => startSystem(name, database.url)));
  const found = await differences(systems, equivalenceRequests(fixture)).finally(() => Promise.all(systems.map((system) => system.stop())));
  if (found.length > 0) throw new Error(`The systems answer differently:\n${found.join('\n')}`);
  console.log('Every system answers every scenario alike.');

  const runs: Record<string, Record<SystemName, Figures[]>> = {};
  for (let round = 0; round < rounds; round++) {
    // Alternate who goes first, so that no system always meets a warmer or colder machine.
    const order = NAMES.map((_, i) => NAMES[(i + round) % NAMES.length]!);
    for (const scenario of Object.keys(SCENARIOS)) {
      for (const name of order) {
        const figures = await measure(name, scenario, database.url, fixtureFile, round);
        runs[scenario] ??= { tolstoy: [], raw: [], nest: [] };
        runs[scenario][name] ??= [];
        runs[scenario][name].push(figures);
        console.log(
          `round ${round + 1} ${scenario.padEnd(18)} ${name.padEnd(8)} ${figures.rps.toFixed(0).padStart(6)} req/s  p50 ${figures.p50Ms} ms  p99 ${figures.p99Ms} ms  errors ${figures.errors}  non-2xx ${figures.non2xx}  RSS ${figures.rssMb.toFixed(0)} MB  CPU/request ${figures.serverCpuUs} µs + PostgreSQL ${figures.postgresCpuUs} µs`,
        );
        if (figures.errors > 0 || figures.non2xx > 0) failed = true;
      }
    }
  }
  const results = summarize(runs);
  if (smoke) {
    await mkdir(join(ROOT, 'reports'), { recursive: true });
    await writeFile(join(ROOT, 'reports', 'bench-smoke.json'), JSON.stringify(results, null, 2));
    if (failed) throw new Error('A scenario answered with errors or non-2xx statuses.');
    console.log('The benchmark harness works: reports/bench-smoke.json');
  } else {
    await writeFile(join(ROOT, 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(join(ROOT, 'bench', 'RESULTS.md'), await report(results));
    console.log('Wrote bench/results/latest.json and bench/RESULTS.md');
  }
} catch (error) {
  console.error((error as Error).message);
  failed = true;
} finally {
  await database.stop();
}
process.exit(failed ? 1 : 0);

async function measure(name: SystemName, scenario: string, url: string, fixtureFile: string, round: number): Promise<Figures> {
  const system = await startSystem(name, url);
  try {
    if (!smoke) await load(system.base, scenario, fixtureFile, WARMUP_SECONDS, round + 1000);
    const { value: figures, cpu } = await metered({ server: system.pid, postgresql: postmaster }, () =>
      load(system.base, scenario, fixtureFile, duration, round),
    );
    const perRequest = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, figures.requests));
    return { ...figures, rssMb: await system.peakRssMb(), serverCpuUs: perRequest(cpu.server!), postgresCpuUs: perRequest(cpu.postgresql!) };
  } finally {
    await system.stop();
  }
}

function load(base: string, scenario: string, fixtureFile: string, seconds: number, seed: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/load.ts', base, scenario, fixtureFile, String(seconds), String(connections), String(seed)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the load process failed (${code})`))));
  });
}

/** Against the floor: 0.9× on reads, 0.8× on writes, and the mix (a fifth writes) in proportion. */
function rpsTargetOf(scenario: string): number {
  if (WRITES.includes(scenario)) return TARGETS.writesVsRaw;
  if (scenario === 'mixed') return round2(0.8 * TARGETS.readsVsRaw + 0.2 * TARGETS.writesVsRaw);
  return TARGETS.readsVsRaw;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function summarize(runs: Record<string, Record<SystemName, Figures[]>>) {
  const scenarios: Record<string, unknown> = {};
  for (const [scenario, bySystem] of Object.entries(runs)) {
    const figures = Object.fromEntries(
      NAMES.map((name) => {
        const list = bySystem[name];
        return [
          name,
          {
            rps: round2(median(list.map((f) => f.rps))),
            p50Ms: median(list.map((f) => f.p50Ms)),
            p99Ms: median(list.map((f) => f.p99Ms)),
            errors: list.reduce((sum, f) => sum + f.errors, 0),
            non2xx: list.reduce((sum, f) => sum + f.non2xx, 0),
            rssMb: round2(Math.max(...list.map((f) => f.rssMb))),
            serverCpuUs: median(list.map((f) => f.serverCpuUs)),
            postgresCpuUs: median(list.map((f) => f.postgresCpuUs)),
            runs: list.map((f) => round2(f.rps)),
          },
        ];
      }),
    ) as Record<SystemName, Figures & { runs: number[] }>;
    const ratios = {
      rpsVsRaw: round2(figures.tolstoy.rps / figures.raw.rps),
      rpsVsNest: round2(figures.tolstoy.rps / figures.nest.rps),
      p99VsRaw: round2(figures.tolstoy.p99Ms / figures.raw.p99Ms),
    };
    const target = rpsTargetOf(scenario);
    const targetsMet = {
      rpsVsRaw: ratios.rpsVsRaw >= target,
      rpsVsNest: ratios.rpsVsNest >= TARGETS.rpsVsNest,
      p99VsRaw: ratios.p99VsRaw <= TARGETS.p99VsRaw,
      noErrors: figures.tolstoy.errors === 0 && figures.tolstoy.non2xx === 0,
      rssMb: figures.tolstoy.rssMb < TARGETS.rssMb,
    };
    scenarios[scenario] = { description: SCENARIOS[scenario]!.description, ...figures, ratios, targetsMet };
  }
  return {
    date: new Date().toISOString(),
    machine: machine(),
    versions: versions(),
    settings: { durationSeconds: duration, warmupSeconds: smoke ? 0 : WARMUP_SECONDS, rounds, connections, scale },
    targets: TARGETS,
    scenarios,
  };
}

function machine() {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}` };
}

function versions() {
  const version = (name: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  return {
    node: process.versions.node,
    postgresql: '18 (embedded)',
    fastify: version('fastify'),
    prisma: version('@prisma/client'),
    pg: version('pg'),
    nest: version('@nestjs/core'),
    autocannon: version('autocannon'),
  };
}

async function report(results: ReturnType<typeof summarize>): Promise<string> {
  const notes = await readFile(join(ROOT, 'bench', 'profiling.md'), 'utf8');
  const lines = [
    '# Benchmark results',
    '',
    `Generated by \`npm run bench\` on ${results.date.slice(0, 10)}. Figures are medians of ${results.settings.rounds} runs of ${results.settings.durationSeconds} s per system and scenario (after a ${results.settings.warmupSeconds} s warm-up), with ${results.settings.connections} connections from autocannon in a separate process; the systems ran alternately, one at a time, on the same embedded PostgreSQL with the same data. Only ratios mean anything on a shared machine.`,
    '',
    `Machine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memoryGb} GiB, ${results.machine.os}. Versions: Node.js ${results.versions.node}, PostgreSQL ${results.versions.postgresql}, Fastify ${results.versions.fastify}, Prisma ${results.versions.prisma}, pg ${results.versions.pg}, NestJS ${results.versions.nest}, autocannon ${results.versions.autocannon}.`,
    '',
    `Data: ${results.settings.scale.organizations} organizations × ${results.settings.scale.members} members × ${results.settings.scale.tools} tools (2 actions each) × ${results.settings.scale.flows} flows of 5 steps, ${results.settings.scale.logsPerFlow} execution logs per flow.`,
    '',
    `Targets: at least ${TARGETS.readsVsRaw}× the floor's requests per second on reads and ${TARGETS.writesVsRaw}× on writes (${rpsTargetOf('mixed')}× on the mix), ${TARGETS.rpsVsNest}× NestJS's, p99 at most ${TARGETS.p99VsRaw}× the floor's, no errors, peak RSS under ${TARGETS.rssMb} MB.`,
    '',
    'Every system authenticates with API keys and writes the same one-line access log. CPU per request is read from `/proc`, for the server process and for all of PostgreSQL, over the measured seconds: steadier than requests per second on a shared machine.',
    '',
    '| scenario | system | req/s | p50 ms | p99 ms | errors | non-2xx | peak RSS MB | server CPU µs/req | PostgreSQL CPU µs/req |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const check = (ok: boolean) => (ok ? '✓' : '✗');
  const ratioLines = [
    '',
    '| scenario | vs floor req/s (target) | vs NestJS req/s | p99 vs floor | server CPU/req vs floor | no errors | RSS < 200 MB |',
    '|---|---:|---:|---:|---:|:---:|:---:|',
  ];
  for (const [scenario, entry] of Object.entries(results.scenarios) as [string, any][]) {
    for (const name of NAMES) {
      const f = entry[name];
      lines.push(
        `| ${scenario} | ${name} | ${f.rps.toFixed(0)} | ${f.p50Ms} | ${f.p99Ms} | ${f.errors} | ${f.non2xx} | ${f.rssMb.toFixed(0)} | ${f.serverCpuUs} | ${f.postgresCpuUs} |`,
      );
    }
    const { ratios, targetsMet } = entry;
    ratioLines.push(
      `| ${scenario} | ${ratios.rpsVsRaw}× (${rpsTargetOf(scenario)}×) ${check(targetsMet.rpsVsRaw)} | ${ratios.rpsVsNest}× ${check(targetsMet.rpsVsNest)} | ${ratios.p99VsRaw}× ${check(targetsMet.p99VsRaw)} | ${round2(entry.tolstoy.serverCpuUs / entry.raw.serverCpuUs)}× | ${check(targetsMet.noErrors)} | ${check(targetsMet.rssMb)} |`,
    );
  }
  return [...lines, '', '## Tolstoy against its peers', ...ratioLines, '', notes.trim(), ''].join('\n');
}
