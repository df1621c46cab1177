// Schedule slots: the instants at which a schedule trigger's cron expression fires, read on the
// wall clock of its IANA time zone, and which of the slots a ticker finds due are run or recorded
// as missed. Pure: no database, no clock of its own.
//
// Daylight-saving time, as Vixie cron has it:
// - A wall-clock time that the clock skips (spring forward: Europe/Berlin has no 02:30 on
//   2026-03-29) fires once, at the jump (03:00 CEST, 01:00Z); several skipped times are one run.
// - A wall-clock time that the clock shows twice (fall back: 02:30 on 2026-10-25 in Berlin) fires
//   once, the first time (02:30 CEST, 00:30Z).
// - Unless the hour field names every hour: then the schedule follows real time, so
//   `*/15 * * * *` fires every 15 minutes straight through both changes (the skipped quarters do
//   not exist; the repeated ones fire in both passes).
// cron-parser's own time-zone mode is not used: its next() and prev() disagree at the changes (next()
// runs the skipped 02:30 at 03:30, prev() not at all; prev() finds the repeated 02:30 twice, and so
// does next() when it starts inside the repeated hour). Slots are found on a UTC wall clock instead,
// and placed by the zone's offsets (wallClock.ts).
import { CronExpressionParser } from 'cron-parser';
import { slotAfter, slotBefore, type WallClock } from './wallClock.ts';

/** What a schedule does with the slots missed while nothing ran (see catchUpPlan); 'latest' unless it says. */
export type CatchUp = 'skip' | 'latest' | 'all';

export interface Schedule {
  cron: string;
  timezone: string;
}

/** The zone of a schedule that names none. */
export const DEFAULT_TIMEZONE = 'UTC';
/** The most slots caught up, or listed as missed, at once: after a longer downtime the older slots are neither run nor listed. */
export const CATCH_UP_CAP = 100;
/** A slot fired within this of its time is on time; an older one was missed during a downtime. */
export const ON_TIME_GRACE_MS = 30_000;
/** nextSlot looks this far ahead: 29 February can be 8 years from the next (2096 to 2104). */
const SLOT_HORIZON_MS = 9 * 366 * 86_400_000;

interface FieldRule {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const SECOND_FIELD: FieldRule = { name: 'second', min: 0, max: 59 };
const FIVE_FIELDS: FieldRule[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];
// One item of a field's list: *, a value or a range of values, then perhaps a step. Only these are
// documented: cron-parser's extensions (?, L, W, #, H, @daily) are refused.
const ITEM = /^(?:(\*)|([0-9]+|[A-Za-z]+)(?:-([0-9]+|[A-Za-z]+))?)(?:\/([0-9]+))?$/;
// Any instant finds a slot of a satisfiable expression within the horizon; this one is fixed, so that validity does not depend on when it is checked.
const CHECKED_FROM = Date.UTC(2000, 0, 1);

/**
 * Undefined when the schedule is valid; otherwise what is wrong with it, in words for a 422.
 * The cron expression has 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds
 * first, each a list of *, numbers, names (JAN-DEC, SUN-SAT; 0 and 7 are Sunday) and ranges, each
 * perhaps with a step after * or a range (0-30/5). When both day fields are restricted, either one
 * matching is enough, as in Vixie cron. An expression that never fires is refused.
 */
export function scheduleProblem(schedule: Schedule): string | undefined {
  const cron = schedule.cron.trim();
  const fields = cron === '' ? [] : cron.split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `cron must have 5 fields (minute hour day month weekday) or 6 with seconds first; got ${fields.length}`;
  }
  const rules = fields.length === 6 ? [SECOND_FIELD, ...FIVE_FIELDS] : FIVE_FIELDS;
  for (const [index, field] of fields.entries()) {
    const problem = fieldProblem(field, rules[index]!);
    if (problem) return problem;
  }
  if (!isTimeZone(schedule.timezone)) return `timezone "${schedule.timezone}" is not an IANA time zone such as "Europe/Berlin"`;
  let clock: WallClock;
  try {
    clock = wallClockOf({ cron, timezone: schedule.timezone });
  } catch (error) {
    return parserProblem(cron, (error as Error).message);
  }
  return slotAfter({ ...clock, zone: 'UTC' }, CHECKED_FROM, CHECKED_FROM + SLOT_HORIZON_MS) === null ? neverFires(cron) : undefined;
}

const PARSER_FIELDS: Record<string, string> = {
  Second: 'second',
  Minute: 'minute',
  Hour: 'hour',
  DayOfMonth: 'day of month',
  Month: 'month',
  DayOfWeek: 'day of week',
};

/** cron-parser's objections to what passed the checks here, in words. */
function parserProblem(cron: string, message: string): string {
  if (/Invalid explicit day of month/.test(message)) return neverFires(cron);
  const duplicate = /^Cron(\w+) Validation error, duplicate values found: (\S+)$/.exec(message);
  if (duplicate) {
    const sunday = duplicate[1] === 'DayOfWeek' ? ' (0 and 7 are both Sunday)' : '';
    return `${PARSER_FIELDS[duplicate[1]!]} field names ${duplicate[2]} more than once${sunday}`;
  }
  return `cron "${cron}" is not valid: ${message}`;
}

function neverFires(cron: string): string {
  return `cron "${cron}" never fires: no month it names has the days of month it names`;
}

function fieldProblem(field: string, rule: FieldRule): string | undefined {
  for (const item of field.split(',')) {
    const match = ITEM.exec(item);
    if (!match) {
      const names = rule.names ? `, names (${rule.names[0]}-${rule.names.at(-1)})` : '';
      return `${rule.name} field "${field}" is not understood: use *, numbers${names}, ranges (1-5), lists (1,3) and steps (*/15, 0-30/5)`;
    }
    const [, , first, last, step] = match;
    if (step !== undefined && first !== undefined && last === undefined) {
      return `${rule.name} field "${field}": a step follows * or a range (*/15, 0-30/5), not a single value`;
    }
    if (step !== undefined && Number(step) === 0) return `${rule.name} field "${field}": a step must be at least 1`;
    const values = [first, last].filter((value) => value !== undefined).map((value) => fieldValue(value, rule));
    const problem = values.find((value) => typeof value === 'string');
    if (problem) return problem;
    if (values.length === 2 && values[0]! > values[1]!) return `${rule.name} range "${item}" runs backwards`;
  }
  return undefined;
}

/** The number a value of a field stands for, or what is wrong with it. */
function fieldValue(value: string, rule: FieldRule): number | string {
  if (/^[0-9]+$/.test(value)) {
    const number = Number(value);
    return number >= rule.min && number <= rule.max ? number : `${rule.name} ${value} is out of range ${rule.min}-${rule.max}`;
  }
  const index = rule.names?.indexOf(value.toUpperCase()) ?? -1;
  if (index >= 0) return index + rule.min;
  return rule.names
    ? `${rule.name} "${value}" is not a name of ${rule.names[0]}-${rule.names.at(-1)}`
    : `${rule.name} "${value}" is not a number from ${rule.min} to ${rule.max}`;
}

function isTimeZone(zone: string): boolean {
  // Intl also takes offsets such as "+01:00", which are not zones: their clocks never change.
  if (!/^[A-Za-z]/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function wallClockOf(schedule: Schedule): WallClock {
  const walls = CronExpressionParser.parse(schedule.cron.trim(), { tz: 'UTC' });
  return { zone: schedule.timezone, walls, everyHour: walls.fields.hour.values.length === 24 };
}

/** The first slot strictly after `after`, or null if there is none within SLOT_HORIZON_MS (only for an expression scheduleProblem refuses). */
export function nextSlot(schedule: Schedule, after: Date): Date | null {
  const slot = slotAfter(wallClockOf(schedule), after.getTime(), after.getTime() + SLOT_HORIZON_MS);
  return slot === null ? null : new Date(slot);
}

/**
 * The slots s with from <= s <= now, at most `cap` of them: the most recent ones, ascending, and
 * whether older ones were left out. Found walking back from `now`, so a long downtime of a
 * frequent schedule costs no more than `cap` slots.
 */
export function dueSlots(schedule: Schedule, from: Date, now: Date, cap: number): { slots: Date[]; more: boolean } {
  const clock = wallClockOf(schedule);
  const floor = from.getTime();
  const slots: number[] = [];
  let before = now.getTime() + 1;
  while (slots.length < cap) {
    const slot = slotBefore(clock, before, floor);
    if (slot === null) break;
    slots.push(slot);
    before = slot;
  }
  const more = slots.length === cap && slotBefore(clock, before, floor) !== null;
  return { slots: slots.reverse().map((slot) => new Date(slot)), more };
}

/**
 * Which due slots (ascending) fire and which are recorded as missed. A slot is on time when
 * now - slot <= graceMs; older ones were missed during a downtime.
 * skip: the on-time slots fire; older ones are missed.
 * latest: the on-time slots fire; if none is on time, the most recent missed slot fires once; every other older slot is missed.
 * all: every due slot fires (dueSlots's cap bounds them).
 */
export function catchUpPlan(due: Date[], now: Date, policy: CatchUp, graceMs: number): { fire: Date[]; missed: Date[] } {
  if (policy === 'all') return { fire: [...due], missed: [] };
  const onTime = due.filter((slot) => now.getTime() - slot.getTime() <= graceMs);
  const late = due.filter((slot) => now.getTime() - slot.getTime() > graceMs);
  if (policy === 'latest' && onTime.length === 0 && late.length > 0) return { fire: late.slice(-1), missed: late.slice(0, -1) };
  return { fire: onTime, missed: late };
}
