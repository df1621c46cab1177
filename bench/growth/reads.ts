// The reads the growth benchmark times: the API's lists and reads of executions and their logs,
// sent from this process (undici, a few connections) to the API process, spread over the
// organizations, each answer checked. Either a fixed number of requests of each kind, one kind
// after another, or all kinds mixed until told to stop (the load during a prune).
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Agent, request } from 'undici';
import { encodeCursor } from '../../src/resources/pagination.ts';
import { firstIdOf } from '../engine/tolstoy.ts';

export const READS = ['list', 'laterPage', 'byFlow', 'byStatus', 'one', 'logs'] as const;
export type Read = (typeof READS)[number];

/** What each read asks, as the report names it. */
export const READ_NAMES: Record<Read, string> = {
  list: 'GET /executions (first page)',
  laterPage: 'GET /executions?cursor= (half-way down the list)',
  byFlow: 'GET /executions?flowId=',
  byStatus: 'GET /executions?status=completed',
  one: 'GET /executions/{id}',
  logs: 'GET /execution-logs?executionId=',
};

/** An organization's key, and the ids its reads name. */
export interface Probe {
  key: string;
  orgId: string;
  flowId: string;
  /** A cursor at the execution half-way down the organization's list. */
  cursor: string;
  /** Executions of the organization, picked at random. */
  executionIds: string[];
}

export interface Latency {
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** What the answers that were not as expected were, by kind (`status 503`, an error's code). */
  failures: Record<string, number>;
}

/** The probes of each organization, from what the database holds now; the executions picked among those made since `since`, when given. */
export async function probesOf(databaseUrl: string, tenants: { key: string; orgId: string; flowId: string }[], since?: Date): Promise<Probe[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const probes: Probe[] = [];
    for (const tenant of tenants) {
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM executions WHERE org_id = $1 ORDER BY id DESC OFFSET (SELECT count(*) / 2 FROM executions WHERE org_id = $1) LIMIT 1`,
        [tenant.orgId],
      );
      const sample = await client.query<{ id: string }>(`SELECT id FROM executions WHERE org_id = $1 AND id >= $2::uuid ORDER BY random() LIMIT 25`, [
        tenant.orgId,
        firstIdOf(since ?? new Date(0)),
      ]);
      probes.push({ ...tenant, cursor: encodeCursor(rows[0]!.id), executionIds: sample.rows.map((row) => row.id) });
    }
    return probes;
  } finally {
    await client.end();
  }
}

function pathOf(read: Read, probe: Probe, index: number): string {
  const id = probe.executionIds[index % probe.executionIds.length]!;
  switch (read) {
    case 'list':
      return '/executions';
    case 'laterPage':
      return `/executions?cursor=${probe.cursor}`;
    case 'byFlow':
      return `/executions?flowId=${probe.flowId}`;
    case 'byStatus':
      return '/executions?status=completed';
    case 'one':
      return `/executions/${id}`;
    case 'logs':
      return `/execution-logs?executionId=${id}`;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10;
}

class Timings {
  readonly #latencies = new Map<Read, number[]>();
  readonly #errors = new Map<Read, number>();
  readonly #failures = new Map<Read, Record<string, number>>();

  add(read: Read, ms: number | string): void {
    if (typeof ms === 'string') {
      this.#errors.set(read, (this.#errors.get(read) ?? 0) + 1);
      const failures = this.#failures.get(read) ?? {};
      failures[ms] = (failures[ms] ?? 0) + 1;
      this.#failures.set(read, failures);
    } else {
      const list = this.#latencies.get(read) ?? [];
      list.push(ms);
      this.#latencies.set(read, list);
    }
  }

  of(reads: readonly Read[]): Latency {
    const all = reads.flatMap((read) => this.#latencies.get(read) ?? []).sort((a, b) => a - b);
    const errors = reads.reduce((sum, read) => sum + (this.#errors.get(read) ?? 0), 0);
    const failures: Record<string, number> = {};
    for (const read of reads) for (const [why, n] of Object.entries(this.#failures.get(read) ?? {})) failures[why] = (failures[why] ?? 0) + n;
    return { requests: all.length + errors, errors, p50Ms: percentile(all, 50), p99Ms: percentile(all, 99), failures };
  }
}

/** Sends one read and answers its latency, or what was wrong with its answer (not a 200 of the right shape). */
async function send(dispatcher: Agent, base: string, read: Read, probe: Probe, index: number): Promise<number | string> {
  const begin = performance.now();
  try {
    const response = await request(base + pathOf(read, probe, index), { dispatcher, headers: { authorization: `Bearer ${probe.key}` } });
    const body = (await response.body.json().catch(() => undefined)) as any;
    const elapsed = performance.now() - begin;
    const shaped = read === 'one' ? typeof body?.id === 'string' && Array.isArray(body.steps) : Array.isArray(body?.items);
    if (response.statusCode !== 200) return `status ${response.statusCode}${body?.detail ? `: ${String(body.detail).slice(0, 120)}` : ''}`;
    return shaped ? elapsed : 'not the shape of its answer';
  } catch (error) {
    return (error as { code?: string }).code ?? (error as Error).message.slice(0, 120);
  }
}

/** `requests` of one read, `connections` at a time, after a few unmeasured. */
export async function timeRead(base: string, probes: Probe[], read: Read, requests: number, connections: number): Promise<Latency> {
  const dispatcher = new Agent({ connections, keepAliveTimeout: 60_000 });
  const timings = new Timings();
  let index = 0;
  const worker = async (count: number, keep: boolean) => {
    while (index < count) {
      const i = index++;
      const ms = await send(dispatcher, base, read, probes[i % probes.length]!, Math.floor(i / probes.length));
      if (keep) timings.add(read, ms);
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, () => worker(Math.min(connections * 2, requests), false)));
    index = 0;
    await Promise.all(Array.from({ length: connections }, () => worker(requests, true)));
    return timings.of([read]);
  } finally {
    await dispatcher.close();
  }
}

/** Every read in turn, `connections` at a time, until `until` settles; the latencies of each and of all. */
export async function readsDuring<T>(
  base: string,
  probes: Probe[],
  connections: number,
  until: Promise<T>,
): Promise<{ value: T; reads: Record<Read | 'all', Latency> }> {
  const dispatcher = new Agent({ connections, keepAliveTimeout: 60_000 });
  const timings = new Timings();
  let done = false;
  const value = until.finally(() => (done = true));
  let index = 0;
  const worker = async () => {
    while (!done) {
      const i = index++;
      const read = READS[i % READS.length]!;
      const n = Math.floor(i / READS.length);
      timings.add(read, await send(dispatcher, base, read, probes[n % probes.length]!, Math.floor(n / probes.length)));
    }
  };
  const workers = Promise.all(Array.from({ length: connections }, worker));
  try {
    const result = await value;
    await workers;
    const reads = Object.fromEntries([...READS.map((read) => [read, timings.of([read])]), ['all', timings.of(READS)]]) as Record<Read | 'all', Latency>;
    return { value: result, reads };
  } finally {
    await dispatcher.close();
  }
}
