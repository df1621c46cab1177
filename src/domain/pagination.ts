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
export const DEFAULT_LIMIT = 20;
const CURSOR_VERSION = 'v1';

/** Prisma arguments for one page: one row more than the page holds tells whether another follows. */
export function pageArgs<Where extends object>(query: PageQuery, where: Where = {} as Where) {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  return {
    where: after === undefined ? where : { ...where, id: { lt: after } },
    orderBy: { id: 'desc' as const },
    take: (query.limit ?? DEFAULT_LIMIT) + 1,
  };
}

/** The same for a raw query: its end (`… AND id < cursor ORDER BY id DESC LIMIT n`), `id` being the table's. */
export function pageSql(query: PageQuery, id = Prisma.raw('id')): Prisma.Sql {
  const after = query.cursor === undefined ? Prisma.empty : Prisma.sql`AND ${id} < ${decodeCursor(query.cursor)}::uuid`;
  return Prisma.sql`${after} ORDER BY ${id} DESC LIMIT ${(query.limit ?? DEFAULT_LIMIT) + 1}`;
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
