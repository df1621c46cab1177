// Pages of documents that may each be megabytes (an execution's input and output, a log's inputs
// and outputs): a page of 100 of them would load and answer hundreds of megabytes, enough to
// take down the API, so a page holds at most PAGE_BYTES of them (as stored: JSON text), and at
// least one; its nextCursor says where the rest begin, as when the page is full.
import type { Database } from '../db/client.ts';
import { DEFAULT_LIMIT, encodeCursor, type Page, type PageQuery } from './pagination.ts';

export const PAGE_BYTES = 4 * 1024 * 1024;

/** The page's rows: those, newest first, whose documents fit within PAGE_BYTES (at least the first). */
export function withinPageBytes<Row extends { bytes: number }>(rows: Row[]): Row[] {
  let total = 0;
  let kept = 0;
  for (const row of rows) {
    total += row.bytes;
    if (total > PAGE_BYTES && kept > 0) break;
    kept++;
  }
  return rows.slice(0, kept);
}

/** The execution ids of `candidates` (a page's rows and the one after it) whose documents fit, in their order. */
export async function executionsWithinPageBytes(db: Database, candidates: { id: string }[]): Promise<string[]> {
  if (candidates.length === 0) return [];
  // octet_length reads a stored value's size without reading the value.
  const sizes = await db.$queryRaw<{ id: string; bytes: number }[]>`
    SELECT id::text, (octet_length(input) + COALESCE(octet_length(output), 0) + COALESCE(octet_length(error), 0))::float8 AS bytes
    FROM executions WHERE id = ANY(${candidates.map((row) => row.id)}::uuid[])`;
  const bytes = new Map(sizes.map((row) => [row.id, row.bytes]));
  return withinPageBytes(candidates.map((row) => ({ id: row.id, bytes: bytes.get(row.id) ?? 0 }))).map((row) => row.id);
}

/**
 * A page of `rows`, the rows that fit out of `candidates` (the page's rows and the one after
 * it): followed by more when a row after the page exists, or when rows were left out for size.
 */
export function toBoundedPage<Row extends { id: string }, Item>(rows: Row[], candidates: number, query: PageQuery, toItem: (row: Row) => Item): Page<Item> {
  const limit = query.limit ?? DEFAULT_LIMIT;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const more = candidates > page.length;
  return { items: page.map(toItem), nextCursor: more && last ? encodeCursor(last.id) : null };
}
