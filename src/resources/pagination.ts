// Lists are ordered newest first by id (UUIDv7 ids grow with time) and paginated with an
// opaque cursor: "v1" and the 16 bytes of the last item's id in base64url. Every string of that
// shape (the contract's pattern) is a position in the list, so no well-formed cursor is refused.
import { Prisma } from '../generated/prisma/client.ts';

export interface PageQuery {
  limit?: number;
  cursor?: string;
}

export interface Page<Item> {
  items: Item[];
  nextCursor: string | null;
}

// The contract's default; the validator fills it in before a handler runs.
const DEFAULT_LIMIT = 20;
const CURSOR_VERSION = 'v1';

/**
 * Prisma arguments for one page: one row more than the page holds tells whether another follows.
 * The cursor is a condition of its own beside the caller's filter (AND), so it only ever narrows
 * it: merged into the filter, it would replace a condition of the filter on `id`.
 */
export function pageArgs<Where extends object>(query: PageQuery, where: Where = {} as Where) {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  return {
    where: after === undefined ? where : { AND: [where, { id: { lt: after } }] },
    orderBy: { id: 'desc' as const },
    take: (query.limit ?? DEFAULT_LIMIT) + 1,
  };
}

/** The same for a raw query: its end (`… AND id < cursor ORDER BY id DESC LIMIT n`), `id` being the table's. */
export function pageSql(query: PageQuery, id = Prisma.raw('id')): Prisma.Sql {
  const after = query.cursor === undefined ? Prisma.empty : Prisma.sql`AND ${id} < ${decodeCursor(query.cursor)}::uuid`;
  return Prisma.sql`${after} ORDER BY ${id} DESC LIMIT ${(query.limit ?? DEFAULT_LIMIT) + 1}`;
}

/**
 * The most bytes of stored documents (JSON text) one page of a list answers, whatever its `limit`:
 * a page of large items stops early, its nextCursor continuing after its last item. An item larger
 * than this alone is answered alone (each is bounded where it is written). A fixed property of the
 * API, like `limit`'s 100, not a setting: what it protects is the API process's fixed heap.
 */
export const PAGE_BYTES = 4 * 1024 * 1024;

/** Where a page bounded in bytes reads: the columns of an item, and `FROM … WHERE …` without the cursor. */
export interface PageSource {
  columns: Prisma.Sql;
  from: Prisma.Sql;
  /** The item's stored documents, whose octet_length counts towards PAGE_BYTES. */
  documents: string[];
}

/**
 * A page's statement, bounded in bytes as well as by `limit`: a running sum of the items' sizes
 * stops it in the database, which never sends the rows after the bound. octet_length reads a
 * stored value's size without decompressing or fetching it; `pageFollowed` tells whether another
 * item follows the last one sent. The table's id column must be named `id` in `from`.
 */
export function boundedPageSql(query: PageQuery, { columns, from, documents }: PageSource): Prisma.Sql {
  const bytes = Prisma.raw(documents.map((column) => `coalesce(octet_length(${column}), 0)`).join(' + '));
  const window = Prisma.sql`OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING)`;
  return Prisma.sql`
    SELECT * FROM (
      SELECT ${columns}, sum(${bytes}) ${window} AS "pageBytes", row_number() ${window} AS "pagePosition",
        lead(id) ${window} IS NOT NULL AS "pageFollowed"
      ${from} ${pageSql(query)}
    ) page
    WHERE "pagePosition" <= ${query.limit ?? DEFAULT_LIMIT} AND ("pagePosition" = 1 OR "pageBytes" <= ${PAGE_BYTES})
    ORDER BY id DESC`;
}

/** The page of the rows boundedPageSql read. */
export function toBoundedPage<Row extends { id: string; pageFollowed: boolean }, Item>(rows: Row[], toItem: (row: Row) => Item): Page<Item> {
  const last = rows.at(-1);
  return { items: rows.map(toItem), nextCursor: last?.pageFollowed ? encodeCursor(last.id) : null };
}

export function toPage<Row extends { id: string }, Item>(rows: Row[], query: PageQuery, toItem: (row: Row) => Item): Page<Item> {
  const limit = query.limit ?? DEFAULT_LIMIT;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(toItem), nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}

export function encodeCursor(id: string): string {
  return CURSOR_VERSION + Buffer.from(id.replaceAll('-', ''), 'hex').toString('base64url');
}

// The contract's pattern (v1 and 22 base64url characters) is checked before any handler runs.
function decodeCursor(cursor: string): string {
  const hex = Buffer.from(cursor.slice(CURSOR_VERSION.length), 'base64url').toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A cursor into a list ordered by a sequence number instead of an id (rows whose ids are random):
 * the same shape, the number in its 16 bytes. Every well-formed cursor reads as a number, as a
 * decimal string (it may exceed 64 bits, and is compared as numeric).
 */
export function encodeSequenceCursor(seq: bigint): string {
  return CURSOR_VERSION + Buffer.from(seq.toString(16).padStart(32, '0'), 'hex').toString('base64url');
}

export function decodeSequenceCursor(cursor: string): string {
  return BigInt(`0x${Buffer.from(cursor.slice(CURSOR_VERSION.length), 'base64url').toString('hex')}`).toString();
}
