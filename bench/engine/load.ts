// The engine benchmark's load generator, a process of its own so that it shares no event loop
// with a system under test. It sends POSTs that each start one execution, with a fresh `text` in
// the body, either closed-loop (`connections` requests in flight, each sent as the one before
// is answered) or at a fixed `rate` per second (open loop), for `seconds` or `count` requests,
// whichever ends first, and prints its figures as JSON: how many were sent and answered as
// expected, latencies, and the ids of the executions started when asked.
// Usage: node bench/engine/load.ts '<LoadPlan as JSON>'
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';

export interface Target {
  path: string;
  headers: Record<string, string>;
  /** The body, whose `"{text}"` is replaced by a value of this request's own. */
  body: string;
}

export interface LoadPlan {
  base: string;
  targets: Target[];
  seconds: number;
  /** Stop after this many requests, sooner than `seconds` (none when omitted). */
  count?: number;
  /** Closed loop with this many requests in flight, or… */
  connections: number;
  /** …this many requests a second, whatever the answers (at most `connections` in flight). */
  rate?: number;
  /** What an answer must be to count: the execution finished with the text echoed, or accepted. */
  expect: 'tolstoy-finished' | 'n8n-finished' | 'dbos-finished' | 'restate-finished' | 'accepted';
  /** Keep the ids of the executions the answers name. */
  collectIds?: boolean;
}

export interface LoadFigures {
  sent: number;
  ok: number;
  errors: number;
  /** Answers that were not as expected, by what they were. */
  failures: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  /** Seconds from the first request sent to the last answer received. */
  elapsedSeconds: number;
  /** Started executions: their ids, and when the request was sent (ms since the epoch). */
  started: { id: string; sentAt: number }[];
  /** This process's own CPU time. */
  cpuSeconds: number;
}

const plan: LoadPlan = JSON.parse(process.argv[2]!);
const dispatcher = new Agent({ connections: plan.connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
const latencies: number[] = [];
const failures: Record<string, number> = {};
const started: LoadFigures['started'] = [];
let sent = 0;
let ok = 0;
let errors = 0;

function fail(reason: string): void {
  failures[reason] = (failures[reason] ?? 0) + 1;
}

async function one(index: number): Promise<void> {
  const target = plan.targets[index % plan.targets.length]!;
  const text = `bench-${process.pid}-${index}`;
  const sentAt = Date.now();
  const begin = performance.now();
  sent++;
  try {
    const response = await request(plan.base + target.path, {
      dispatcher,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...target.headers },
      body: target.body.replace('{text}', text),
    });
    const body = (await response.body.json().catch(() => undefined)) as any;
    const elapsed = performance.now() - begin;
    const reason = verdict(response.statusCode, body, text);
    if (reason) return fail(reason);
    ok++;
    latencies.push(elapsed);
    if (plan.collectIds) started.push({ id: body.id, sentAt });
  } catch (error) {
    errors++;
    fail((error as Error).message);
  }
}

function verdict(status: number, body: any, text: string): string | undefined {
  switch (plan.expect) {
    case 'tolstoy-finished':
      if (status !== 200) return `status ${status}${body?.status ? ` (${body.status})` : ''}`;
      return body?.status === 'completed' && body.output?.text === text ? undefined : `not echoed: ${JSON.stringify(body).slice(0, 200)}`;
    case 'n8n-finished':
    case 'dbos-finished':
    case 'restate-finished':
      if (status !== 200) return `status ${status}`;
      return body?.text === text ? undefined : `not echoed: ${JSON.stringify(body).slice(0, 200)}`;
    case 'accepted':
      return status === 202 || status === 200 ? undefined : `status ${status}`;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10;
}

const begin = performance.now();
const deadline = begin + plan.seconds * 1000;
const count = plan.count ?? Number.POSITIVE_INFINITY;
let index = 0;
if (plan.rate === undefined) {
  // Closed loop: each connection sends its next request once the last is answered.
  await Promise.all(
    Array.from({ length: plan.connections }, async () => {
      while (performance.now() < deadline && index < count) await one(index++);
    }),
  );
} else {
  // Open loop: requests leave on schedule; the in-flight bound keeps a stalled system from piling up sockets.
  const inFlight = new Set<Promise<void>>();
  const interval = 1000 / plan.rate;
  for (let next = begin; next < deadline && index < count; next += interval) {
    const wait = next - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    if (inFlight.size >= plan.connections) {
      fail('not sent: too many in flight');
      continue;
    }
    const request = one(index++).finally(() => inFlight.delete(request));
    inFlight.add(request);
  }
  await Promise.all(inFlight);
}
const elapsedSeconds = (performance.now() - begin) / 1000;
latencies.sort((a, b) => a - b);
await dispatcher.close();
const cpu = process.cpuUsage();
const figures: LoadFigures = {
  sent,
  ok,
  errors,
  failures,
  p50Ms: percentile(latencies, 50),
  p99Ms: percentile(latencies, 99),
  elapsedSeconds,
  started,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
};
process.stdout.write(JSON.stringify(figures));
