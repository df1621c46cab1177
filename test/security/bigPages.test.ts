// Attacks on list pages, by storing large records and reading many of them at once, and what each
// must get:
// - 40 execution logs of 1 MiB of outputs each (the largest step answer), read 100 to a page by
//   six clients at once: every page answers 200 with at most PAGE_BYTES (4 MiB) of documents, the
//   walk yields every log once, and the API process, with the production heap cap (256 MB),
//   survives; its peak RSS is reported. Unbounded, one such page held 40 MB of text, and the
//   process died out of memory at the first pages.
// - 40 executions of a 1 MiB input and a 2 MiB output each (the budget), read the same way: the
//   same, each page holding one execution.
// - both shaped to cost the most memory once parsed (arrays of zeros, about four times their text
//   in V8): the same.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { PAGE_BYTES } from '../../src/resources/pagination.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl } from '../helper.ts';
import { startServer } from '../process.ts';

const MiB = 1024 * 1024;
const READERS = 6;
const RECORDS = 40;

/** Peak resident memory of a process, in MB, from /proc (VmHWM). */
function peakRssMb(pid: number): number {
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return Math.round(kb / 1024);
}

/** SQL for a JSON document of about `bytes` bytes: an array of zeros, the costliest shape to parse. */
function zerosSql(bytes: number): string {
  return `'{"a":[' || repeat('0,', ${Math.floor(bytes / 2)}) || '0]}'`;
}

const url = await freshDatabaseUrl(t);
const { app, db } = await buildTestApp(t, { worker: false }, url);
const acme = await createTenant(app);
const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Flow', steps: [] } })).data;
// Written in the database, as the engine would have: a body holds at most 1 MiB.
await db.$executeRawUnsafe(
  `INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, outputs, updated_at)
   SELECT uuidv7(), $1::uuid, $2::uuid, $3::uuid, 'e' || n, 's', 'completed', '{}', ${zerosSql(MiB)}, now() FROM generate_series(1, ${RECORDS}) n`,
  acme.orgId,
  flow.id,
  acme.userId,
);
await db.$executeRawUnsafe(
  `INSERT INTO executions (id, org_id, flow_id, flow_version, status, input, output, created_by, updated_at)
   SELECT uuidv7(), $1::uuid, $2::uuid, 1, 'completed', ${zerosSql(MiB)}, ${zerosSql(2 * MiB)}, $3::uuid, now() FROM generate_series(1, ${RECORDS}) n`,
  acme.orgId,
  flow.id,
  acme.userId,
);

const server = await startServer({ DATABASE_URL: url, TOLSTOY_WORKER: 'false', NODE_OPTIONS: '--max-old-space-size=256' });
t.teardown(() => server.process.kill('SIGKILL'));
t.comment(`peak RSS of the API process at rest: ${peakRssMb(server.process.pid!)} MB`);

/** Walks a list 100 to a page; the bytes of each page's body. */
async function walk(path: string): Promise<{ ids: string[]; pageBytes: number[]; statuses: number[] }> {
  const ids: string[] = [];
  const pageBytes: number[] = [];
  const statuses: number[] = [];
  let cursor: string | null = null;
  do {
    const response = await fetch(`${server.base}${path}?limit=100${cursor ? `&cursor=${cursor}` : ''}`, { headers: acme.headers });
    statuses.push(response.status);
    if (!response.ok) break;
    const text = await response.text();
    pageBytes.push(text.length);
    const page = JSON.parse(text) as { items: { id: string }[]; nextCursor: string | null };
    ids.push(...page.items.map((item) => item.id));
    cursor = page.nextCursor;
  } while (cursor);
  return { ids, pageBytes, statuses };
}

for (const path of ['/execution-logs', '/executions']) {
  t.test(`${READERS} clients walking ${path} at once, ${RECORDS} large records 100 to a page`, async (t) => {
    const walks = await Promise.all(Array.from({ length: READERS }, () => walk(path)));
    t.equal(server.process.exitCode, null, 'the API process survives');
    for (const { ids, pageBytes, statuses } of walks) {
      t.ok(
        statuses.every((status) => status === 200),
        `every page answers 200 (${statuses.length} pages)`,
      );
      t.equal(ids.length, RECORDS, 'as many records as stored');
      t.equal(new Set(ids).size, RECORDS, 'every record once');
      // A page's body is its documents and a few hundred bytes of fields per item.
      t.ok(Math.max(...pageBytes) <= PAGE_BYTES + 100 * 1000, `the largest page is ${Math.max(...pageBytes)} bytes`);
    }
    t.comment(`peak RSS of the API process after ${READERS} walks of ${path} at once: ${peakRssMb(server.process.pid!)} MB`);
  });
}
