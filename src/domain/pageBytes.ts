// Pages of documents that may each be megabytes (an execution's input and output, a log's inputs
// and outputs, a flow's or a version's steps, an action's inputSchema): a page of 100 of them would load and
// answer a hundred megabytes and more, enough to take down the API, so a page holds at most
// PAGE_BYTES of them (as stored: JSON text), and at least one; its nextCursor says where the
// rest begin, as when the page is full. The sizes are read first (octet_length reads a stored
// value's size without reading the value), then the documents that fit.
import type { Database } from '../db/client.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { DEFAULT_LIMIT, encodeCursor, type Page, type PageQuery, pageSql } from './pagination.ts';

export const PAGE_BYTES = 4 * 1024 * 1024;

/** The size, as stored, of the documents of each table whose pages are bounded. */
const DOCUMENTS = {
  executions: Prisma.sql`octet_length(input) + COALESCE(octet_length(output), 0) + COALESCE(octet_length(error), 0)`,
  execution_logs: Prisma.sql`octet_length(inputs) + COALESCE(octet_length(outputs), 0) + COALESCE(octet_length(error), 0)`,
  flows: Prisma.sql`octet_length(steps) + COALESCE(octet_length(output), 0)`,
  flow_versions: Prisma.sql`octet_length(steps) + COALESCE(octet_length(output), 0)`,
  actions: Prisma.sql`octet_length(input_schema) + octet_length(headers)`,
};
type Table = keyof typeof DOCUMENTS;

/** The rows, newest first, whose documents fit within PAGE_BYTES (at least the first). */
function withinPageBytes<Row extends { bytes: number }>(rows: Row[]): Row[] {
  let total = 0;
  let kept = 0;
  for (const row of rows) {
    total += row.bytes;
    if (total > PAGE_BYTES && kept > 0) break;
    kept++;
  }
  return rows.slice(0, kept);
}

/** For a list read with Prisma: the ids of `candidates` (a page's rows and the one after it) whose documents fit, in their order. */
export async function idsWithinPageBytes(db: Database, table: Table, candidates: { id: string }[]): Promise<string[]> {
  if (candidates.length === 0) return [];
  const sizes = await db.$queryRaw<{ id: string; bytes: number }[]>`
    SELECT id::text, (${DOCUMENTS[table]})::float8 AS bytes FROM ${Prisma.raw(table)} WHERE id = ANY(${candidates.map((row) => row.id)}::uuid[])`;
  const bytes = new Map(sizes.map((row) => [row.id, row.bytes]));
  return withinPageBytes(candidates.map((row) => ({ id: row.id, bytes: bytes.get(row.id) ?? 0 }))).map((row) => row.id);
}

/**
 * For a list read in one raw statement: `columns` of the rows of `table` that `where` selects, a
 * page of them (and the one after it) by size first, then those that fit, each with `candidates`,
 * how many there were.
 */
export function pageWithinBytesSql(table: Table, columns: Prisma.Sql, where: Prisma.Sql, query: PageQuery): Prisma.Sql {
  return Prisma.sql`
    WITH candidates AS (
      SELECT id, ${DOCUMENTS[table]} AS bytes FROM ${Prisma.raw(table)} WHERE ${where} ${pageSql(query)}
    ), kept AS (
      SELECT id, count(*) OVER () AS candidates, row_number() OVER (ORDER BY id DESC) AS position, sum(bytes) OVER (ORDER BY id DESC) AS through
      FROM candidates
    )
    SELECT ${columns}, kept.candidates::int AS candidates FROM ${Prisma.raw(table)} JOIN kept USING (id)
    WHERE kept.position = 1 OR kept.through <= ${PAGE_BYTES} ORDER BY id DESC`;
}

/**
 * A page of `rows`, the rows that fit out of `candidates` (the page's rows and the one after
 * it): followed by more when a row after the page exists, or when rows were left out for size.
 */
export function toBoundedPage<Row extends { id: string }, Item>(rows: Row[], candidates: number, query: PageQuery, toItem: (row: Row) => Item): Page<Item> {
  const limit = query.limit ?? DEFAULT_LIMIT;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(toItem), nextCursor: candidates > page.length && last ? encodeCursor(last.id) : null };
}
