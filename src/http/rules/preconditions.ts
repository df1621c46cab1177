// Optimistic concurrency: every single resource has a strong ETag, the hash of its
// representation; a write with If-Match acts only while the resource still has one of the tags
// named (`412` otherwise). PATCH applies a JSON merge patch (RFC 7396) to the representation
// under the same rule. The resource's row is locked while the condition is checked and the
// write made, so two writers with the same tag cannot both succeed.
import { createHash } from 'node:crypto';
import { readerOf } from '../../access/tenancy.ts';
import type { OrganizationContext, ServiceContext, TenantContext } from '../../contract/handlers.ts';
import { ProblemError } from '../../contract/problems.ts';
import type { Database, Transaction } from '../../db/client.ts';

/**
 * The strong ETag of a representation. Representations are built field by field in one order by
 * their to… mappers (src/resources), and their free-form documents kept as sent, so JSON.stringify
 * gives the same text for the same content wherever it is answered.
 */
export function etagOf(representation: unknown): string {
  const text = JSON.stringify(withoutWarnings(representation));
  return `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
}

// A write's warnings (a flow's) describe the write, not the resource: they stay out of its tag.
function withoutWarnings(representation: unknown): unknown {
  if (representation === null || typeof representation !== 'object' || !Object.hasOwn(representation, 'warnings')) return representation;
  const { warnings, ...resource } = representation as Record<string, unknown>;
  return resource;
}

/** Whether an If-Match value holds for the current tag (`*`, or a list naming it; weak tags never match). */
export function ifMatchHolds(ifMatch: string, etag: string): boolean {
  const tags = ifMatch.split(',').map((tag) => tag.trim());
  return tags.includes('*') || tags.includes(etag);
}

export function preconditionFailed(etag: string): ProblemError {
  return new ProblemError(
    'precondition-failed',
    `The resource changed since you read it (If-Match names none of its tags): its ETag is now ${etag}. Read it again, and apply your change to what it is now.`,
  );
}

/** The same JSON text for the same value, whatever the order of its keys. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const names = Object.keys(value).sort();
    return `{${names.map((name) => `${JSON.stringify(name)}:${canonical((value as Record<string, unknown>)[name])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * RFC 7396 section 2, as written. Our own because json-merge-patch, the library for it, drops the
 * rest of a patch after a `__proto__` key, which our bodies keep as plain data (src/http/jsonBody.ts).
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete result[name];
    // defineProperty keeps a `__proto__` name a plain property.
    else Object.defineProperty(result, name, { value: mergePatch(result[name], value), enumerable: true, writable: true, configurable: true });
  }
  return result;
}

/**
 * Locks the resource's row until the transaction ends, if it is organization `orgId`'s (any row
 * for an undefined `orgId`: callers who may see every organization). Another organization's row
 * is left alone: a caller must not hold it, nor wait for its lock. `table` is one of ours, never input.
 */
export async function lockRow(tx: Transaction, table: string, id: string, orgId: string | undefined): Promise<void> {
  if (orgId === undefined) {
    await tx.$executeRawUnsafe(`SELECT 1 FROM ${table} WHERE id = $1::uuid FOR NO KEY UPDATE`, id);
    return;
  }
  const owner = table === 'organizations' ? 'id' : 'org_id';
  await tx.$executeRawUnsafe(`SELECT 1 FROM ${table} WHERE id = $1::uuid AND ${owner} = $2::uuid FOR NO KEY UPDATE`, id, orgId);
}

/** The organization whose rows the caller of a write may lock: its own, or any for the operator (and callers with trusted headers). */
function organizationOf(context: WriteContext): string | undefined {
  if ('tenant' in context) return context.tenant.orgId;
  return context.caller.kind === 'key' ? context.caller.tenant.orgId : undefined;
}

/**
 * The context of a handler run inside `tx`: its database is the transaction, and what it tells
 * this node (runs queued or cancelled, keys to forget) is held back until `told()`, which the
 * caller runs once the transaction has committed: news told earlier could be undone by a
 * rollback, or (a key forgotten) be overtaken by a request that still reads the old rows.
 */
export function transactional<C extends ServiceContext>(tx: Transaction, context: C): { context: C; told: () => void } {
  const news: (() => void)[] = [];
  const { runs, keys } = context;
  const held: Pick<ServiceContext, 'db' | 'runs' | 'keys'> = {
    db: asDatabase(tx, context.db),
    runs: {
      start: (queue, run) => runs.start(queue, run),
      rerun: (queue, rerun) => runs.rerun(queue, rerun),
      cancel: (db, request) => runs.cancel(db, request),
      signal: (queue, signal) => runs.signal(queue, signal),
      finished: (id, ms, stop) => runs.finished(id, ms, stop),
      started: (id) => news.push(() => runs.started(id)),
      cancelled: (id) => news.push(() => runs.cancelled(id)),
    },
    keys: {
      forgetKey: (id) => news.push(() => keys.forgetKey(id)),
      forgetMember: (orgId, userId) => news.push(() => keys.forgetMember(orgId, userId)),
      forgetOrganization: (orgId) => news.push(() => keys.forgetOrganization(orgId)),
    },
  };
  return {
    context: { ...context, ...held },
    told: () => {
      for (const tell of news) tell();
    },
  };
}

/** A transaction used where a database is expected: a nested transaction is part of it. */
function asDatabase(tx: Transaction, root: Database): Database {
  const database: Database = new Proxy(tx, {
    get: (target, name) => (name === '$transaction' ? (act: (db: Database) => Promise<unknown>) => act(database) : Reflect.get(target, name)),
  }) as unknown as Database;
  roots.set(database, root);
  return database;
}

const roots = new WeakMap<Database, Database>();

/**
 * The database outside the transaction `db` may be (see asDatabase): after a statement failed,
 * a transaction answers nothing more, so what explains the failure is read from outside it.
 */
export function outside(db: Database): Database {
  return roots.get(db) ?? db;
}

interface ResourceInput {
  params: { id: string };
  headers: { 'if-match'?: string };
}

/** A get… handler, called with the resource's id alone. */
// biome-ignore lint/suspicious/noExplicitAny: each get… handler takes its own input and context types.
type Get = (input: any, context: any) => Promise<unknown>;

type WriteContext = (TenantContext | OrganizationContext) & ServiceContext;

/** What the get… handler of the resource needs, inside the write's transaction. */
function readContext(context: WriteContext, db: Database) {
  return 'tenant' in context ? { ...context, db, reader: readerOf(context.tenant) } : { ...context, db };
}

/** The resource as it is, locked until the transaction ends; `412` when If-Match does not hold for it. */
async function current(tx: Transaction, db: Database, table: string, get: Get, input: ResourceInput, context: WriteContext): Promise<unknown> {
  await lockRow(tx, table, input.params.id, organizationOf(context));
  const resource = await get({ params: { id: input.params.id }, query: {}, headers: {}, body: undefined }, readContext(context, db));
  const ifMatch = input.headers['if-match'];
  if (ifMatch !== undefined) {
    const etag = etagOf(resource);
    if (!ifMatchHolds(ifMatch, etag)) throw preconditionFailed(etag);
  }
  return resource;
}

/** A PUT or DELETE of the resource in `table` (read by `get`) that honours If-Match. */
export function conditional<In extends ResourceInput, C extends WriteContext, Out>(
  table: string,
  get: Get,
  write: (input: In, context: C) => Promise<Out>,
): (input: In, context: C) => Promise<Out> {
  return async (input, context) => {
    if (input.headers['if-match'] === undefined) return write(input, context);
    let told = () => {};
    const written = await context.db.$transaction(async (tx) => {
      const held = transactional(tx, context);
      told = held.told;
      await current(tx, held.context.db, table, get, input, context);
      return write(input, held.context);
    });
    told();
    return written;
  };
}

/**
 * A PATCH: the merge patch applied to the resource as it is, then written by the PUT's handler
 * with the fields the patch names (a field the patch removes is cleared, as `null` in a PUT).
 */
export function patching<Patch extends ResourceInput & { body: object }, In, C extends WriteContext, Out>(
  table: string,
  get: Get,
  update: (input: In, context: C) => Promise<Out>,
): (input: Patch, context: C) => Promise<Out> {
  return async (input, context) => {
    let told = () => {};
    const written = await context.db.$transaction(async (tx) => {
      const held = transactional(tx, context);
      told = held.told;
      const merged = mergePatch(await current(tx, held.context.db, table, get, input, context), input.body) as Record<string, unknown>;
      const body = Object.fromEntries(Object.keys(input.body).map((name) => [name, Object.hasOwn(merged, name) ? merged[name] : null]));
      // The PUT's input: the same path and headers, and the fields of the patch as they now are.
      return update({ ...input, body } as In, held.context);
    });
    told();
    return written;
  };
}
