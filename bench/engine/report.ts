// ENGINE.md from the engine benchmark's results, and the results of a run of some scenarios
// (`--scenarios D,E`) put in place of theirs among those of the last full run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlFlowReport, type Loop, type Sleeping } from './controlFlow.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TARGETS = { syncVsN8n: 10, syncVsDbos: 1, chainPerSecond: 300, chainVsDbos: 1, chainP99Ms: 250, lost: 0, rssMb: 250, loopItemsPerSecond: 150 };
export const SCENARIOS = ['A', 'B', 'C', 'D', 'E'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/** Where each scenario's figures are in the results. */
const KEYS: Record<Scenario, string> = { A: 'synchronous', B: 'throughput', C: 'crash', D: 'loop', E: 'sleeping' };

interface ProcessFigures {
  processes: Record<string, { cpuMsPerExecution?: number; peakRssMb?: number }>;
}

interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  loadAverage?: { start: number; end: number };
}

/** A run of some scenarios whose figures replaced theirs: when, on what, with what settings. */
interface Part {
  scenarios: Scenario[];
  date: string;
  machine: Machine;
  settings: { rounds: number; connections: number; tenants: number };
  notes: string[];
}

/**
 * The full run's results (`earlier`) with the figures of `scenarios` from `part`, a run of those
 * alone; undefined when `earlier` lacks another scenario's figures.
 */
export function withPart(earlier: any, part: any, scenarios: Scenario[]): any {
  if (SCENARIOS.some((scenario) => !scenarios.includes(scenario) && earlier[KEYS[scenario]] === undefined)) return undefined;
  // A peer that ran in this part is named with its version; one that did not keeps the full run's.
  const ran = Object.entries(part.versions ?? {}).filter(([, version]) => version !== null);
  const merged = { ...earlier, targets: TARGETS, versions: { ...earlier.versions, ...Object.fromEntries(ran) } };
  for (const scenario of scenarios) merged[KEYS[scenario]] = part[KEYS[scenario]];
  // An earlier part's scenarios measured again are this part's now.
  const parts: Part[] = (earlier.parts ?? [])
    .map((older: Part) => ({ ...older, scenarios: older.scenarios.filter((scenario) => !scenarios.includes(scenario)) }))
    .filter((older: Part) => older.scenarios.length > 0);
  merged.parts = [...parts, { scenarios, date: part.date, machine: part.machine, settings: part.settings, notes: part.notes }];
  return merged;
}

const PEER_NAMES: Record<string, string> = { n8n: 'n8n', dbos: 'DBOS', restate: 'Restate' };
const peerName = (key: string) => PEER_NAMES[key] ?? key;
/** The key of Tolstoy over a peer in a scenario's figures: `tolstoyVsN8n`, `tolstoyVsDbos`. */
export const ratioKey = (peer: string) => `tolstoyVs${peer[0]!.toUpperCase()}${peer.slice(1)}`;
const isRatio = (key: string) => key.startsWith('tolstoyVs');
/** The peers of a scenario's figures, by their key, without Tolstoy and the ratios. */
const peersOf = (figures: Record<string, any>) => Object.entries(figures).filter(([name]) => name !== 'tolstoy' && !isRatio(name));

/** Tolstoy over each peer, with the target where the issue sets one (TARGETS `<scenario>Vs<Peer>`). */
function ratioLines(figures: Record<string, any>, scenario: 'sync' | 'chain', what: string, check: (ok: boolean) => string): string[] {
  return peersOf(figures).map(([peer]) => {
    const ratio = figures[ratioKey(peer)];
    const target = (TARGETS as Record<string, number>)[`${scenario}${ratioKey(peer).slice('tolstoy'.length)}`];
    return `Tolstoy / ${peerName(peer)}: **${ratio}×** ${what}${target === undefined ? '' : ` (target ${target}× ${check(ratio >= target)})`}.`;
  });
}

/** Every peer with its version, or that it did not run. */
function peerVersions(versions: Record<string, string | null | undefined>): string {
  const named = Object.keys(PEER_NAMES).map((peer) => `${peerName(peer)} ${versions[peer] ?? '(not run)'}`);
  return `${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
}

function machineOf(machine: Machine): string {
  return `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GiB, ${machine.os}`;
}

function loadOf(machine: Machine): string {
  const load = machine.loadAverage;
  return load ? `; load average (1 min) ${load.start} when the run began, ${load.end} when it ended` : '';
}

/** When, how and where a part ran: on another machine than the full run, it says which. */
function partLine(part: Part, full: Machine): string {
  const names = part.scenarios.join(', ');
  const where = machineOf(part.machine) === machineOf(full) ? '' : `, on another machine: ${machineOf(part.machine)}`;
  const settings = `${part.settings.rounds} rounds, ${part.settings.connections} connections, ${part.settings.tenants} organizations`;
  return `${names}: measured on ${part.date.slice(0, 10)} by a run of ${names} alone (\`--scenarios ${part.scenarios.join(',')}\`)${where}; ${settings}${loadOf(part.machine)}. ${part.notes.join(' ')}`.trim();
}

export function report(results: any): string {
  const check = (ok: boolean) => (ok ? '✓' : '✗');
  const a = results.synchronous;
  const b = results.throughput;
  const c = results.crash.tolstoy;
  const d: Loop = results.loop;
  const e: Sleeping = results.sleeping;
  const processLine = (figures: ProcessFigures) =>
    Object.entries(figures.processes)
      .map(([name, p]) => `${name} ${p.cpuMsPerExecution} ms${p.peakRssMb === undefined ? '' : ` (${p.peakRssMb} MB)`}`)
      .join(', ');
  const peakRss = (figures: ProcessFigures) => Math.max(...Object.values(figures.processes).map((p) => p.peakRssMb ?? 0));
  const lines = [
    '# Engine benchmark results',
    '',
    `Generated by \`npm run bench:engine\` on ${results.date.slice(0, 10)}: Tolstoy's engine, ${peerVersions(results.versions)} side by side, one at a time and alternately, on one embedded PostgreSQL 18 with durable settings${results.versions.restate ? ' (Restate does not store on PostgreSQL: it ran on its own storage, its log fsynced as shipped; see the notes below)' : ''}, every flow step calling one local JSON echo server; the load came from a process of its own. ${results.settings.rounds} rounds of ${results.settings.seconds} s per system (after ${results.settings.warmupSeconds} s of warm-up), ${results.settings.connections} connections, ${results.settings.tenants} organizations. Figures are the median round; only ratios mean anything on a shared machine.`,
    '',
    `Machine: ${machineOf(results.machine)}; Node.js ${results.versions.node}${loadOf(results.machine)}.`,
    '',
    ...results.notes.map((line: string) => `> ${line}`),
    ...(results.parts ?? []).map((part: Part) => `> ${partLine(part, results.machine)}`),
    '',
    '## A: synchronous, a one-step flow answered when finished',
    '',
    '| system | executions/s | p50 ms | p99 ms | errors | CPU per execution (peak RSS) |',
    '|---|---:|---:|---:|---:|---|',
    ...Object.entries(a)
      .filter(([name]) => !isRatio(name))
      .map(([name, f]: [string, any]) => `| ${peerName(name)} | ${f.executionsPerSecond} | ${f.p50Ms} | ${f.p99Ms} | ${f.errors} | ${processLine(f)} |`),
    '',
    ...(peersOf(a).length === 0 ? ['Tolstoy ran alone: no ratio.'] : ratioLines(a, 'sync', 'executions/s', check)),
    '',
    '## B: throughput, a three-step flow started as fast as accepted',
    '',
    '| system | completed/s | p50 ms | p99 ms | at half the rate: starts/s, p50, p99 ms | errors | CPU per execution (peak RSS) |',
    '|---|---:|---:|---:|---|---:|---|',
    ...Object.entries(b.tolstoy).map(
      ([layout, f]: [string, any]) =>
        `| Tolstoy, ${layout} | ${f.executionsPerSecond} | ${f.p50Ms} | ${f.p99Ms} | ${f.halfRate.startsPerSecond}, ${f.halfRate.p50Ms}, ${f.halfRate.p99Ms} | ${f.errors} | ${processLine(f)} |`,
    ),
    ...peersOf(b).map(
      ([name, f]: [string, any]) =>
        `| ${peerName(name)} | ${f.executionsPerSecond} | ${f.p50Ms} | ${f.p99Ms} | ${f.halfRate.startsPerSecond}, ${f.halfRate.p50Ms}, ${f.halfRate.p99Ms} | ${f.errors} | ${processLine(f)} |`,
    ),
    '',
    `Targets: at least ${TARGETS.chainPerSecond} completed executions/s (${Math.max(...Object.values(b.tolstoy).map((f: any) => f.executionsPerSecond))} ${check(Math.max(...Object.values(b.tolstoy).map((f: any) => f.executionsPerSecond)) >= TARGETS.chainPerSecond)}), p99 under ${TARGETS.chainP99Ms} ms at half that rate (${Math.min(...Object.values(b.tolstoy).map((f: any) => f.halfRate.p99Ms))} ms ${check(Math.min(...Object.values(b.tolstoy).map((f: any) => f.halfRate.p99Ms)) < TARGETS.chainP99Ms)}).`,
    ...ratioLines(b, 'chain', 'completed/s (Tolstoy with one worker)', check),
    '',
    '## C: crash, B at half rate with a worker killed every few seconds',
    '',
    '| starts/s | workers killed | accepted | lost | completed steps repeated | steps re-sent (outcome unknown) | p50 ms | p99 ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${c.startsPerSecond} | ${c.workersKilled} | ${c.accepted} | ${c.lost} ${check(c.lost === 0)} | ${c.completedStepsRepeated} ${check(c.completedStepsRepeated === 0)} | ${c.stepsResent} | ${c.p50Ms} | ${c.p99Ms} |`,
    '',
    ...controlFlowReport(d, e, TARGETS.loopItemsPerSecond),
    '',
    `Peak RSS of Tolstoy's processes: ${Math.max(peakRss(a.tolstoy), ...Object.values(b.tolstoy).map((f: any) => peakRss(f)), peakRss(d as any), peakRss(e as any))} MB (target under ${TARGETS.rssMb} MB).`,
    '',
  ];
  // What profiling found and changed, written by hand.
  return [...lines, readFileSync(join(ROOT, 'bench', 'engine', 'notes.md'), 'utf8').trim(), ''].join('\n');
}
