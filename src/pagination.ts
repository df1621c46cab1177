// Lists are ordered newest first by id (UUIDv7 ids grow with time) and paginated with an
// opaque cursor: the id of the last item of the previous page.
import { ProblemError } from './problems.ts';

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
const CURSOR_PREFIX = 'v1:';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Prisma arguments for one page: one row more than the page holds tells whether another follows. */
export function pageArgs<Where extends object>(query: PageQuery, where: Where = {} as Where) {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  return {
    where: after === undefined ? where : { ...where, id: { lt: after } },
    orderBy: { id: 'desc' as const },
    take: (query.limit ?? DEFAULT_LIMIT) + 1,
  };
}

export function toPage<Row extends { id: string }, Item>(rows: Row[], query: PageQuery, toItem: (row: Row) => Item): Page<Item> {
  const limit = query.limit ?? DEFAULT_LIMIT;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(toItem), nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}

export function encodeCursor(id: string): string {
  return Buffer.from(CURSOR_PREFIX + id).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = decoded.slice(CURSOR_PREFIX.length);
  if (!decoded.startsWith(CURSOR_PREFIX) || !UUID.test(id)) {
    throw new ProblemError('validation-error', 'query/cursor: is not a cursor this API returned', [
      { in: 'query', pointer: '/cursor', message: 'is not a cursor this API returned; pass the nextCursor of the previous page' },
    ]);
  }
  return id;
}
