// A tool's rate limit and its pause after a 429, shared by every worker: both are kept in
// PostgreSQL and read by its clock (reserve_tool_call() keeps a sliding log of the tool's last
// calls, and hands the calls it refuses turns in line: the tool_rate_limits and tool_turns
// migrations). No npm library does this on PostgreSQL: those that store limits there
// (rate-limiter-flexible, express-rate-limit's stores) count fixed windows, which let twice the
// limit through across a window's edge.
import type { Database } from '../db/client.ts';

/** The longest a tool is paused, however long its Retry-After asks: a tenant's API chooses it. */
export const MAX_PAUSE_MS = 3_600_000;

/** Reserves a call to the tool now, in a statement of its own: 0 when it may go, else the milliseconds until it may try again. */
export async function reserveCall(db: Database, toolId: string): Promise<number> {
  const [row] = await db.$queryRaw<{ wait: number }[]>`SELECT reserve_tool_call(${toolId}::uuid) AS wait`;
  return row!.wait;
}

/** After the tool answered 429 with Retry-After: no call to it goes before then (at most MAX_PAUSE_MS), from any run. */
export async function pauseTool(db: Database, toolId: string, retryAfterMs: number): Promise<void> {
  const ms = Math.min(Math.max(0, Math.ceil(retryAfterMs)), MAX_PAUSE_MS);
  await db.$executeRaw`
    UPDATE tools SET paused_until = greatest(paused_until, clock_timestamp() + ${ms}::int * interval '1 millisecond') WHERE id = ${toolId}::uuid`;
}

/** When a step whose reservation was refused tries again: after the wait, and a little later at random, so that those refused together do not all come back at once. */
export function tryAgainAt(waitMs: number): Date {
  return new Date(Date.now() + waitMs + Math.random() * Math.min(250, 20 + waitMs / 10));
}
