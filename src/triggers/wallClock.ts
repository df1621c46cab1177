// Where a cron expression's wall-clock times fall in real time, in one IANA time zone, by the
// daylight-saving rule that slots.ts states. cron-parser finds the matching wall-clock times on a
// UTC clock, where no hour is skipped or repeated; Intl gives the zone's offsets; this file places
// the one on the other. All times are epoch milliseconds; a wall-clock time is written as the
// instant at which a UTC clock would show it. Nothing here reads the process's TZ.
import type { CronExpression } from 'cron-parser';

const SECOND = 1000;
const DAY = 86_400_000;

/** A schedule ready to search: its expression on a UTC clock, and whether it names every hour. */
export interface WallClock {
  zone: string;
  walls: CronExpression;
  everyHour: boolean;
}

/** A change of the zone's offset: from `at` on, `after` applies instead of `before`. */
interface OffsetChange {
  at: number;
  before: number;
  after: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function formatIn(zone: string): Intl.DateTimeFormat {
  let format = formats.get(zone);
  if (!format) {
    const fields = { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' } as const;
    format = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', ...fields });
    formats.set(zone, format);
  }
  return format;
}

/** How far the zone's clock is ahead of UTC at `instant`. */
function offsetAt(zone: string, instant: number): number {
  const whole = Math.floor(instant / SECOND) * SECOND;
  const parts = Object.fromEntries(
    formatIn(zone)
      .formatToParts(whole)
      .map((part) => [part.type, Number(part.value)]),
  );
  return Date.UTC(parts.year!, parts.month! - 1, parts.day, parts.hour, parts.minute, parts.second) - whole;
}

/** The first whole second in (from, to] whose offset is not `offset`, knowing that `to` has another. */
function changeBetween(zone: string, from: number, to: number, offset: number): number {
  let [low, high] = [Math.floor(from / SECOND), Math.floor(to / SECOND)];
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (offsetAt(zone, middle * SECOND) === offset) low = middle;
    else high = middle;
  }
  return high * SECOND;
}

// Both searches look a day at a time: a zone is taken to change its offset at most once a day.

/** The first change of offset in (from, to], or null. */
function firstChange(zone: string, from: number, to: number): OffsetChange | null {
  const offset = offsetAt(zone, from);
  for (let low = from; low < to; low += DAY) {
    const high = Math.min(low + DAY, to);
    if (offsetAt(zone, high) !== offset) return changeAt(zone, changeBetween(zone, low, high, offset));
  }
  return null;
}

/** The last change of offset in (from, to], or null. */
function lastChange(zone: string, from: number, to: number): OffsetChange | null {
  const offset = offsetAt(zone, to);
  for (let high = to; high > from; high -= DAY) {
    const low = Math.max(high - DAY, from);
    const earlier = offsetAt(zone, low);
    if (earlier !== offset) return changeAt(zone, changeBetween(zone, low, high, earlier));
  }
  return null;
}

function changeAt(zone: string, at: number): OffsetChange {
  return { at, before: offsetAt(zone, at - SECOND), after: offsetAt(zone, at) };
}

/** The first matching wall-clock time after `wall`, or null if cron-parser finds none. */
function matchingWallAfter(clock: WallClock, wall: number): number | null {
  clock.walls.reset(new Date(wall));
  try {
    return clock.walls.next().getTime();
  } catch {
    return null;
  }
}

/** The last matching wall-clock time before `wall`, or null if cron-parser finds none. */
function matchingWallBefore(clock: WallClock, wall: number): number | null {
  clock.walls.reset(new Date(wall));
  try {
    return clock.walls.prev().getTime();
  } catch {
    return null;
  }
}

/** Whether the clock jumps forward at `change` over a wall-clock time the schedule names: then that change's instant is a slot. */
function skipsSlot(clock: WallClock, change: OffsetChange): boolean {
  if (clock.everyHour || change.after <= change.before) return false;
  const wall = matchingWallAfter(clock, change.at + change.before - 1);
  return wall !== null && wall < change.at + change.after;
}

/** The first wall-clock time that counts after `change`: a repeated hour counts only in its first pass, unless the schedule names every hour. */
function firstCountedWall(clock: WallClock, change: OffsetChange): number {
  const repeats = change.after < change.before && !clock.everyHour;
  return change.at + (repeats ? change.before : change.after);
}

/** The change whose repeated hour `instant` is in the second pass of, when that pass does not count. */
function secondPassOf(clock: WallClock, instant: number): OffsetChange | null {
  if (clock.everyHour) return null;
  const change = lastChange(clock.zone, instant - DAY, instant);
  if (!change || change.after >= change.before) return null;
  return instant < change.at + change.before - change.after ? change : null;
}

/** The first slot strictly after `after` and at most `ceiling`, or null. */
export function slotAfter(clock: WallClock, after: number, ceiling: number): number | null {
  let from = after;
  const secondPass = secondPassOf(clock, after);
  let wallFloor = secondPass ? firstCountedWall(clock, secondPass) - 1 : after + offsetAt(clock.zone, after);
  while (from < ceiling) {
    const wall = matchingWallAfter(clock, wallFloor);
    if (wall === null) return null;
    const slot = wall - offsetAt(clock.zone, from);
    const change = firstChange(clock.zone, from, Math.min(slot, ceiling));
    if (!change) return slot <= ceiling ? slot : null;
    if (skipsSlot(clock, change)) return change.at;
    from = change.at;
    wallFloor = firstCountedWall(clock, change) - 1;
  }
  return null;
}

/** The last slot strictly before `before` and at least `floor`, or null. */
export function slotBefore(clock: WallClock, before: number, floor: number): number | null {
  let to = before;
  let wallCeiling = before + offsetAt(clock.zone, before - 1);
  while (to > floor) {
    const wall = matchingWallBefore(clock, wallCeiling);
    const slot = wall === null ? Number.NEGATIVE_INFINITY : wall - offsetAt(clock.zone, to - 1);
    // A wall-clock time skipped after `floor` would have been a later match than `wall`.
    if (slot < floor - DAY) return null;
    const change = lastChange(clock.zone, Math.max(slot, floor - 1), to - 1);
    if (change) {
      if (skipsSlot(clock, change)) return change.at;
      to = change.at;
      wallCeiling = change.at + change.before;
      continue;
    }
    if (slot < floor) return null;
    const secondPass = secondPassOf(clock, slot);
    if (!secondPass) return slot;
    to = secondPass.at;
    wallCeiling = secondPass.at + secondPass.before;
  }
  return null;
}
