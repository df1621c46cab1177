// Evaluates what tenants wrote and the worker runs: a step's condition and inputs (JSON-e), the
// inputs' check against the action's inputSchema (AJV), a flow's output template. JSON-e does
// not bound its own work (nested `$reduce` takes seconds, `range(0, 150000000)` gigabytes), nor
// AJV (`uniqueItems` is quadratic in objects), so they run in a few child processes, each with a
// capped heap, killed at the deadline of the phase it is in (of CPU time, see #deadlinePassed)
// and replaced.
//
// Processes, not worker_threads: a thread that allocates past its resourceLimits in one go can
// abort the whole process (nodejs/node#47224), and `--max-old-space-size`, which `npm start`
// sets, overrides a thread's limit (nodejs/node#43991). A round trip costs about 0.1 ms.
//
// A free process takes the waiting task of the organization with the fewest tasks evaluating,
// and of those the one served least recently. One organization holds at most every process but
// one (when there are two or more): its templates that run to their deadline would otherwise
// make each step of every other organization wait up to a deadline, a 100-step run 100 s.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EvaluationSettings } from '../config/settings.ts';
import type { TemplateContext } from '../definitions/templates.ts';

/** What an evaluation is doing: a step's condition, its inputs, their validation, or the output. */
export type Phase = 'if' | 'inputs' | 'validation' | 'output';

export type Evaluated =
  | { status: 'skipped' }
  | { status: 'ready'; value: unknown }
  | { status: 'failed'; phase: Phase; code: string; message: string; value?: unknown };

export interface StepTemplates {
  condition: string | null;
  inputs: unknown;
  /** The action's inputSchema; none when the action is gone. */
  schema: Record<string, unknown> | undefined;
}

/**
 * What a step of another kind than an action evaluates: its condition, then a template rendered
 * (`template`, named `where` in messages), or the index of the first of `choice`'s conditions that
 * holds (-1 when none does).
 */
export interface ValueTemplates {
  condition: string | null;
  where: string;
  template?: unknown;
  choice?: string[];
}

export type EvaluationTask =
  | ({ id: number; kind: 'step'; context: TemplateContext } & StepTemplates)
  | ({ id: number; kind: 'value'; context: TemplateContext } & ValueTemplates)
  | { id: number; kind: 'output'; template: unknown; context: TemplateContext };

type Message = ({ ready: true } | { id: number; phase: Phase } | { id: number; outcome: Evaluated }) & { cpuMs: number };

interface Pending {
  task: EvaluationTask;
  orgId: string;
  settle: (outcome: Evaluated) => void;
  fail: (error: Error) => void;
}

interface Evaluating {
  child: ChildProcess;
  /** Started: its modules loaded, so that a deadline measures only the task. */
  ready: boolean;
  pending?: Pending;
  phase: Phase;
  deadline?: NodeJS.Timeout;
  /** Its CPU time (ms) when it last said so, and when the current phase began, by the clock and in CPU time. */
  cpuMs: number;
  phaseStartedAt: number;
  phaseCpuMs: number;
}

// A deadline is of CPU time: a process the machine kept waiting (busy with other work) is given
// its time, up to this many times the deadline by the clock; one that computes is killed on time.
const STARVED_ALLOWANCE = 10;
// The kernel counts processes' CPU time in ticks of 10 ms (USER_HZ, 100 on Linux).
const TICK_MS = 10;

const EVALUATION = fileURLToPath(new URL(`./evaluation${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export class Evaluator {
  readonly #settings: EvaluationSettings;
  readonly #processes = new Set<Evaluating>();
  readonly #waiting: Pending[] = [];
  readonly #running = new Map<string, number>();
  /** When each organization with tasks waiting or evaluating last had one started. */
  readonly #served = new Map<string, number>();
  #ids = 0;
  #starts = 0;
  #closed = false;

  constructor(settings: EvaluationSettings) {
    this.#settings = settings;
  }

  /** A step's condition, then its inputs rendered and checked: skipped, the inputs, or why not. */
  step(orgId: string, templates: StepTemplates, context: TemplateContext): Promise<Evaluated> {
    return this.#evaluate(orgId, { id: ++this.#ids, kind: 'step', context, ...templates });
  }

  /** A step's condition, then its value (a transform, a loop's items, a switch's case…): skipped, the value, or why not. */
  value(orgId: string, templates: ValueTemplates, context: TemplateContext): Promise<Evaluated> {
    return this.#evaluate(orgId, { id: ++this.#ids, kind: 'value', context, ...templates });
  }

  /** A flow's output template rendered. */
  output(orgId: string, template: unknown, context: TemplateContext): Promise<Evaluated> {
    return this.#evaluate(orgId, { id: ++this.#ids, kind: 'output', template, context });
  }

  #evaluate(orgId: string, task: EvaluationTask): Promise<Evaluated> {
    if (this.#closed) return Promise.reject(new Error('The evaluator is closed.'));
    return new Promise((settle, fail) => {
      this.#waiting.push({ task, orgId, settle, fail });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const evaluating of this.#processes) {
      if (!evaluating.ready || evaluating.pending) continue;
      const next = this.#next();
      if (!next) break;
      this.#start(evaluating, next);
    }
    // More processes start while more tasks wait than those starting will take.
    let starting = [...this.#processes].filter((evaluating) => !evaluating.ready).length;
    while (this.#waiting.length > starting && this.#processes.size < this.#settings.processes) {
      this.#spawn();
      starting++;
    }
  }

  /** The first waiting task of the organization with the fewest tasks evaluating, served least recently, short of its share. */
  #next(): Pending | undefined {
    const share = Math.max(1, this.#settings.processes - 1);
    const rank = (orgId: string) => [this.#count(orgId), this.#served.get(orgId) ?? -1] as const;
    let chosen: number | undefined;
    for (let index = 0; index < this.#waiting.length; index++) {
      const [running, served] = rank(this.#waiting[index]!.orgId);
      if (running >= share) continue;
      const [chosenRunning, chosenServed] = chosen === undefined ? [Number.POSITIVE_INFINITY, 0] : rank(this.#waiting[chosen]!.orgId);
      if (running < chosenRunning || (running === chosenRunning && served < chosenServed)) chosen = index;
    }
    return chosen === undefined ? undefined : this.#waiting.splice(chosen, 1)[0];
  }

  #count(orgId: string): number {
    return this.#running.get(orgId) ?? 0;
  }

  #spawn(): void {
    const { memoryMb, resultLimitBytes, schemaCacheSize } = this.#settings;
    const child = fork(EVALUATION, [JSON.stringify({ resultLimitBytes, schemaCacheSize })], {
      execArgv: [`--max-old-space-size=${memoryMb}`],
      // Its only output would be V8's report of a heap exhausted on purpose.
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    child.unref();
    const evaluating: Evaluating = { child, ready: false, phase: 'inputs', cpuMs: 0, phaseStartedAt: 0, phaseCpuMs: 0 };
    child.on('message', (message: Message) => this.#heard(evaluating, message));
    child.on('exit', (code, signal) => this.#exited(evaluating, code, signal));
    child.on('error', () => undefined);
    this.#processes.add(evaluating);
  }

  #start(evaluating: Evaluating, pending: Pending): void {
    evaluating.pending = pending;
    this.#running.set(pending.orgId, this.#count(pending.orgId) + 1);
    this.#served.set(pending.orgId, ++this.#starts);
    this.#enter(evaluating, pending.task.kind === 'output' ? 'output' : pending.task.condition !== null ? 'if' : 'inputs');
    // Idle processes do not keep this one alive; busy ones do, until they answer.
    evaluating.child.channel?.ref();
    evaluating.child.send(pending.task);
  }

  /** Each phase has its own deadline. */
  #enter(evaluating: Evaluating, phase: Phase): void {
    evaluating.phase = phase;
    clearTimeout(evaluating.deadline);
    const ms = phase === 'validation' ? this.#settings.validationTimeoutMs : this.#settings.templateTimeoutMs;
    evaluating.phaseStartedAt = Date.now();
    evaluating.phaseCpuMs = evaluating.cpuMs;
    evaluating.deadline = setTimeout(() => this.#deadlinePassed(evaluating, ms), ms);
  }

  /** At a phase's deadline by the clock: killed if it used its CPU time, else given the rest of it. */
  #deadlinePassed(evaluating: Evaluating, ms: number): void {
    const used = cpuMsOf(evaluating.child.pid) - evaluating.phaseCpuMs;
    const waited = Date.now() - evaluating.phaseStartedAt;
    if (used + TICK_MS < ms && waited < ms * STARVED_ALLOWANCE) {
      evaluating.deadline = setTimeout(() => this.#deadlinePassed(evaluating, ms), ms - used);
      return;
    }
    this.#overran(evaluating, 'time');
  }

  #heard(evaluating: Evaluating, message: Message): void {
    evaluating.cpuMs = message.cpuMs;
    if ('ready' in message) {
      evaluating.ready = true;
      evaluating.child.channel?.unref();
      this.#dispatch();
      return;
    }
    if (evaluating.pending?.task.id !== message.id) return;
    if ('phase' in message) {
      this.#enter(evaluating, message.phase);
      return;
    }
    const { pending } = evaluating;
    this.#finish(evaluating);
    evaluating.child.channel?.unref();
    pending.settle(message.outcome);
    this.#dispatch();
  }

  #finish(evaluating: Evaluating): void {
    clearTimeout(evaluating.deadline);
    const orgId = evaluating.pending!.orgId;
    const running = this.#count(orgId) - 1;
    if (running > 0) this.#running.set(orgId, running);
    else this.#running.delete(orgId);
    if (running === 0 && !this.#waiting.some((waiting) => waiting.orgId === orgId)) this.#served.delete(orgId);
    evaluating.pending = undefined;
  }

  /** Past its deadline or out of memory: the process goes, the task fails, another process takes its place. */
  #overran(evaluating: Evaluating, limit: 'time' | 'memory'): void {
    const { pending, phase } = evaluating;
    this.#processes.delete(evaluating);
    evaluating.child.kill('SIGKILL');
    if (!pending) return;
    this.#finish(evaluating);
    pending.settle({ status: 'failed', phase, ...this.#limitFailure(phase, limit) });
    if (!this.#closed) this.#dispatch();
  }

  #exited(evaluating: Evaluating, code: number | null, signal: NodeJS.Signals | null): void {
    if (!this.#processes.has(evaluating)) return;
    // V8 aborts a process whose heap is exhausted.
    if (signal === 'SIGABRT' || code === 134) {
      this.#overran(evaluating, 'memory');
      return;
    }
    this.#processes.delete(evaluating);
    // One that cannot start would be replaced by another that cannot either.
    if (!evaluating.ready) for (const waiting of this.#waiting.splice(0)) waiting.fail(new Error(`An evaluator process could not start (${signal ?? code}).`));
    const { pending } = evaluating;
    if (!pending) return;
    this.#finish(evaluating);
    pending.fail(new Error(`An evaluator process exited (${signal ?? code}) during a task.`));
    if (!this.#closed) this.#dispatch();
  }

  #limitFailure(phase: Phase, limit: 'time' | 'memory'): { code: string; message: string } {
    const { templateTimeoutMs, validationTimeoutMs, memoryMb } = this.#settings;
    const memory = `needed more memory than TOLSTOY_EVALUATOR_MEMORY_MB (${memoryMb} MB)`;
    if (phase === 'validation') {
      const time = `took longer than TOLSTOY_VALIDATION_TIMEOUT_MS (${validationTimeoutMs} ms)`;
      return { code: 'validation-limit', message: `Checking the inputs against the action's inputSchema ${limit === 'time' ? time : memory}.` };
    }
    const time = `took longer than TOLSTOY_TEMPLATE_TIMEOUT_MS (${templateTimeoutMs} ms)`;
    return { code: 'template-limit', message: `${phase}: evaluating the template ${limit === 'time' ? time : memory}` };
  }

  /** Kills every process; tasks still waiting or evaluating fail. */
  close(): void {
    this.#closed = true;
    for (const evaluating of this.#processes) {
      clearTimeout(evaluating.deadline);
      evaluating.child.kill('SIGKILL');
      evaluating.pending?.fail(new Error('The evaluator is closed.'));
    }
    this.#processes.clear();
    for (const pending of this.#waiting.splice(0)) pending.fail(new Error('The evaluator is closed.'));
  }
}

/** The CPU time (ms) process `pid` has used, from Linux's /proc; where that cannot be read, none is left (the clock decides). */
function cpuMsOf(pid: number | undefined): number {
  try {
    // Fields after the command's name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
