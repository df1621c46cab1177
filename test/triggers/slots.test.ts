// Schedule slots without a database or a clock: what a schedule may say, the next slot, the slots
// due after a downtime, what each catch-up policy fires, and daylight-saving time, both as fixed
// examples and against the rule of slots.ts written out here minute by minute.
import { CronExpressionParser } from 'cron-parser';
import t from 'tap';
import {
  CATCH_UP_CAP,
  type CatchUp,
  catchUpPlan,
  DEFAULT_TIMEZONE,
  dueSlots,
  nextSlot,
  ON_TIME_GRACE_MS,
  type Schedule,
  scheduleProblem,
} from '../../src/triggers/slots.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const FIELD_COUNT = 'cron must have 5 fields (minute hour day month weekday) or 6 with seconds first; got';

function utc(cron: string): Schedule {
  return { cron, timezone: DEFAULT_TIMEZONE };
}

/** The next `count` slots after `after`, each found from the one before. */
function slotsAfter(schedule: Schedule, after: string, count: number): string[] {
  const slots: string[] = [];
  for (let slot = nextSlot(schedule, new Date(after)); slot && slots.length < count; slot = nextSlot(schedule, slot)) slots.push(slot.toISOString());
  return slots;
}

const wallFormats = new Map<string, Intl.DateTimeFormat>();

/** What the zone's wall clock shows at `instant`, written as the instant a UTC clock shows it. */
function wallAt(zone: string, instant: number): number {
  const fields = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' } as const;
  const format = wallFormats.get(zone) ?? new Intl.DateTimeFormat('sv-SE', { timeZone: zone, ...fields });
  wallFormats.set(zone, format);
  return Date.parse(`${format.format(instant).replace(' ', 'T')}Z`);
}

t.test('scheduleProblem', async (t) => {
  t.test('accepts 5 fields, or 6 with seconds first, with names, steps and both Sundays', async (t) => {
    for (const cron of [
      '*/5 * * * *',
      '0 30 9 * * MON-FRI',
      '0 0 1 jan,JUL *',
      '0 0 * * 7',
      '0 0 * * 0',
      '15 10 * * 1-5/2',
      '0-30/10 * * * * *',
      ' 0 12  * * * ',
    ]) {
      t.equal(scheduleProblem(utc(cron)), undefined, cron);
    }
  });

  t.test('refuses 4 or 7 fields, or none, saying how many there were', async (t) => {
    t.equal(scheduleProblem(utc('* * * *')), `${FIELD_COUNT} 4`);
    t.equal(scheduleProblem(utc('0 0 0 * * * 2026')), `${FIELD_COUNT} 7`);
    t.equal(scheduleProblem(utc('  ')), `${FIELD_COUNT} 0`);
  });

  t.test('refuses values out of their range, backwards ranges, empty steps and repeated values', async (t) => {
    t.equal(scheduleProblem(utc('60 * * * *')), 'minute 60 is out of range 0-59');
    t.equal(scheduleProblem(utc('0 24 * * *')), 'hour 24 is out of range 0-23');
    t.equal(scheduleProblem(utc('0 0 0 * *')), 'day of month 0 is out of range 1-31');
    t.equal(scheduleProblem(utc('0 0 * 13 *')), 'month 13 is out of range 1-12');
    t.equal(scheduleProblem(utc('0 0 * * 8')), 'day of week 8 is out of range 0-7');
    t.equal(scheduleProblem(utc('60 * * * * *')), 'second 60 is out of range 0-59');
    t.equal(scheduleProblem(utc('0 0 * JANUARY *')), 'month "JANUARY" is not a name of JAN-DEC');
    t.equal(scheduleProblem(utc('0 x * * *')), 'hour "x" is not a number from 0 to 23');
    t.equal(scheduleProblem(utc('5-1 * * * *')), 'minute range "5-1" runs backwards');
    t.equal(scheduleProblem(utc('*/0 * * * *')), 'minute field "*/0": a step must be at least 1');
    t.equal(scheduleProblem(utc('*/15,30 * * * *')), 'minute field names 30 more than once');
    t.equal(scheduleProblem(utc('0 0 * * 0,7')), 'day of week field names 0 more than once (0 and 7 are both Sunday)');
    t.equal(scheduleProblem(utc('1,,2 * * * *')), 'minute field "1,,2" is not understood: use *, numbers, ranges (1-5), lists (1,3) and steps (*/15, 0-30/5)');
  });

  t.test("refuses cron-parser's extensions, which are not documented", async (t) => {
    t.equal(scheduleProblem(utc('@daily')), `${FIELD_COUNT} 1`);
    t.equal(scheduleProblem(utc('5/15 * * * *')), 'minute field "5/15": a step follows * or a range (*/15, 0-30/5), not a single value');
    t.equal(
      scheduleProblem(utc('0 0 * * 1#2')),
      'day of week field "1#2" is not understood: use *, numbers, names (SUN-SAT), ranges (1-5), lists (1,3) and steps (*/15, 0-30/5)',
    );
    t.equal(scheduleProblem(utc('? * * * *')), 'minute field "?" is not understood: use *, numbers, ranges (1-5), lists (1,3) and steps (*/15, 0-30/5)');
    t.equal(scheduleProblem(utc('0 0 L * *')), 'day of month "L" is not a number from 1 to 31');
    t.equal(
      scheduleProblem(utc('0 0 15W * *')),
      'day of month field "15W" is not understood: use *, numbers, ranges (1-5), lists (1,3) and steps (*/15, 0-30/5)',
    );
    t.equal(scheduleProblem(utc('H * * * *')), 'minute "H" is not a number from 0 to 59');
    t.equal(
      scheduleProblem(utc('0 0 * * 5L')),
      'day of week field "5L" is not understood: use *, numbers, names (SUN-SAT), ranges (1-5), lists (1,3) and steps (*/15, 0-30/5)',
    );
  });

  t.test('accepts IANA zones and refuses anything else', async (t) => {
    for (const timezone of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Etc/GMT+3', DEFAULT_TIMEZONE]) {
      t.equal(scheduleProblem({ cron: '0 2 * * *', timezone }), undefined, timezone);
    }
    t.equal(scheduleProblem({ cron: '0 2 * * *', timezone: 'Mars/Olympus' }), 'timezone "Mars/Olympus" is not an IANA time zone such as "Europe/Berlin"');
    t.equal(scheduleProblem({ cron: '0 2 * * *', timezone: '+01:00' }), 'timezone "+01:00" is not an IANA time zone such as "Europe/Berlin"');
    t.equal(scheduleProblem({ cron: '0 2 * * *', timezone: '' }), 'timezone "" is not an IANA time zone such as "Europe/Berlin"');
  });

  t.test('refuses an expression that never fires, and keeps one that fires once in four years', async (t) => {
    for (const cron of ['0 0 30 2 *', '0 0 31 2,4 *', '0 0 31 4,6,9,11 *']) {
      t.equal(scheduleProblem(utc(cron)), `cron "${cron}" never fires: no month it names has the days of month it names`);
    }
    t.equal(scheduleProblem(utc('0 0 29 2 *')), undefined);
    t.equal(scheduleProblem(utc('0 0 30 2 MON')), undefined, 'either day field matching is enough');
  });
});

t.test('nextSlot', async (t) => {
  t.test('every second and every minute, strictly after the instant given', async (t) => {
    t.strictSame(slotsAfter(utc('* * * * * *'), '2026-05-04T12:00:00.000Z', 2), ['2026-05-04T12:00:01.000Z', '2026-05-04T12:00:02.000Z']);
    t.strictSame(slotsAfter(utc('* * * * * *'), '2026-05-04T12:00:00.400Z', 1), ['2026-05-04T12:00:01.000Z']);
    t.strictSame(slotsAfter(utc('* * * * *'), '2026-05-04T12:00:00.000Z', 2), ['2026-05-04T12:01:00.000Z', '2026-05-04T12:02:00.000Z']);
    t.strictSame(slotsAfter(utc('* * * * *'), '2026-05-04T12:00:59.999Z', 1), ['2026-05-04T12:01:00.000Z']);
  });

  t.test('a zone places the wall-clock time: 02:00 in Berlin is 01:00Z in winter and 00:00Z in summer', async (t) => {
    const berlin = { cron: '0 2 * * *', timezone: 'Europe/Berlin' };
    t.strictSame(slotsAfter(berlin, '2026-01-10T00:00:00Z', 1), ['2026-01-10T01:00:00.000Z']);
    t.strictSame(slotsAfter(berlin, '2026-07-09T12:00:00Z', 1), ['2026-07-10T00:00:00.000Z']);
    t.strictSame(slotsAfter(utc('0 2 * * *'), '2026-07-09T12:00:00Z', 1), ['2026-07-10T02:00:00.000Z'], 'UTC is the default zone');
  });

  t.test('finds 29 February eight years on, across 2100, which is no leap year', async (t) => {
    t.strictSame(slotsAfter(utc('0 0 29 2 *'), '2096-03-01T00:00:00Z', 1), ['2104-02-29T00:00:00.000Z']);
    t.strictSame(slotsAfter({ cron: '0 0 29 2 *', timezone: 'Europe/Berlin' }, '2096-03-01T00:00:00Z', 1), ['2104-02-28T23:00:00.000Z']);
  });
});

t.test('daylight-saving time', async (t) => {
  t.test('a daily 02:30 fires once at the jump forward, and once, the first time, when 02:30 comes twice', async (t) => {
    const berlin = { cron: '30 2 * * *', timezone: 'Europe/Berlin' };
    t.strictSame(slotsAfter(berlin, '2026-03-27T12:00:00Z', 3), ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    t.strictSame(slotsAfter(berlin, '2026-10-24T12:00:00Z', 2), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    t.strictSame(slotsAfter(berlin, '2026-10-25T01:00:00Z', 1), ['2026-10-26T01:30:00.000Z'], 'not again from inside the repeated hour');
    const newYork = { cron: '30 2 * * *', timezone: 'America/New_York' };
    t.strictSame(slotsAfter(newYork, '2026-03-07T12:00:00Z', 3), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z', '2026-03-10T06:30:00.000Z']);
    t.strictSame(
      slotsAfter(newYork, '2026-10-31T12:00:00Z', 2),
      ['2026-11-01T07:30:00.000Z', '2026-11-02T07:30:00.000Z'],
      'New York repeats 01:00-02:00, not 02:30',
    );
    const newYorkRepeated = { cron: '30 1 * * *', timezone: 'America/New_York' };
    t.strictSame(slotsAfter(newYorkRepeated, '2026-10-31T12:00:00Z', 2), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
  });

  t.test('*/15 follows real time through both changes: every 15 minutes, no instant twice', async (t) => {
    for (const [timezone, after, repeated] of [
      ['Europe/Berlin', '2026-03-28T23:50:00Z', false],
      ['Europe/Berlin', '2026-10-24T23:50:00Z', true],
      ['America/New_York', '2026-03-08T05:50:00Z', false],
      ['America/New_York', '2026-11-01T04:50:00Z', true],
    ] as const) {
      const slots = slotsAfter({ cron: '*/15 * * * *', timezone }, after, 16).map((slot) => Date.parse(slot));
      t.strictSame(
        slots.slice(1).map((slot, index) => slot - slots[index]!),
        Array(15).fill(15 * MINUTE),
        `${timezone} ${after}`,
      );
      const readings = slots.map((slot) => wallAt(timezone, slot));
      t.equal(new Set(readings).size, repeated ? 12 : 16, 'four quarters are read twice at the fall back');
    }
  });

  t.test('a schedule that names some hours runs a skipped hour once at the jump, and a repeated one only the first time', async (t) => {
    const quarters = { cron: '*/15 2 * * *', timezone: 'Europe/Berlin' };
    t.strictSame(slotsAfter(quarters, '2026-03-28T12:00:00Z', 2), ['2026-03-29T01:00:00.000Z', '2026-03-30T00:00:00.000Z']);
    t.strictSame(slotsAfter(quarters, '2026-10-24T12:00:00Z', 5), [
      '2026-10-25T00:00:00.000Z',
      '2026-10-25T00:15:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T00:45:00.000Z',
      '2026-10-26T01:00:00.000Z',
    ]);
  });

  t.test("cron-parser's own time-zone mode, which slots.ts does not use, disagrees with itself at the changes", async (t) => {
    const berlin = (currentDate: string) => CronExpressionParser.parse('30 2 * * *', { tz: 'Europe/Berlin', currentDate: new Date(currentDate) });
    const forward = berlin('2026-03-28T12:00:00Z');
    t.equal(forward.next().toISOString(), '2026-03-29T01:30:00.000Z', 'next() runs the skipped 02:30 at 03:30');
    const backward = berlin('2026-03-30T12:00:00Z');
    t.strictSame([backward.prev().toISOString(), backward.prev().toISOString()], ['2026-03-30T00:30:00.000Z', '2026-03-28T01:30:00.000Z'], 'prev() skips it');
    const repeated = berlin('2026-10-26T12:00:00Z');
    t.strictSame(
      [repeated.prev().toISOString(), repeated.prev().toISOString(), repeated.prev().toISOString()],
      ['2026-10-26T01:30:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-25T00:30:00.000Z'],
      'prev() finds the repeated 02:30 twice',
    );
    t.equal(berlin('2026-10-25T01:00:00Z').next().toISOString(), '2026-10-25T01:30:00.000Z', 'so does next() from inside the repeated hour');
  });

  t.test('every slot around each change of four zones is the one the rule gives, going forward, backward, or starting anywhere', async (t) => {
    const changes = [
      ['Europe/Berlin', '2026-03-29T01:00:00Z'],
      ['Europe/Berlin', '2026-10-25T01:00:00Z'],
      ['America/New_York', '2026-03-08T07:00:00Z'],
      ['America/New_York', '2026-11-01T06:00:00Z'],
      // Havana changes at midnight, Lord Howe by half an hour.
      ['America/Havana', '2026-03-08T05:00:00Z'],
      ['America/Havana', '2026-11-01T05:00:00Z'],
      ['Australia/Lord_Howe', '2026-04-04T15:00:00Z'],
      ['Australia/Lord_Howe', '2026-10-03T15:30:00Z'],
    ] as const;
    const crons = ['30 2 * * *', '30 1 * * *', '0 0 * * *', '45 23 * * *', '*/15 * * * *', '30 * * * *', '*/15 2 * * *', '0,30 1-3 * * *', '*/20 0-1,23 * * *'];
    for (const [timezone, change] of changes) {
      const [start, end] = [Date.parse(change) - DAY, Date.parse(change) + DAY];
      t.not(wallAt(timezone, start) - start, wallAt(timezone, end) - end, `${timezone} changes its offset around ${change}`);
      for (const cron of crons) {
        const schedule = { cron, timezone };
        // A day more than the window, so that the slot after any start in it is known.
        const known = slotsByRule(schedule, start, end + DAY);
        const expected = known.filter((slot) => slot < end);
        const name = `${cron} in ${timezone} around ${change}`;
        t.strictSame(forward(schedule, start, end), expected, `${name}, one after the other`);
        t.strictSame(dueSlots(schedule, new Date(start), new Date(end - 1), 10_000), { slots: expected.map((slot) => new Date(slot)), more: false }, name);
        const starts = Array.from({ length: 100 }, (_, index) => start + index * 17 * MINUTE + 13 * SECOND);
        t.strictSame(
          starts.map((after) => nextSlot(schedule, new Date(after))!.getTime()),
          starts.map((after) => known.find((slot) => slot > after)),
          `${name}, from anywhere`,
        );
        t.strictSame(
          starts.map((from) => dueSlots(schedule, new Date(from), new Date(from + 3 * HOUR), 3)),
          starts.map((from) => {
            const due = expected.filter((slot) => slot >= from && slot <= from + 3 * HOUR);
            return { slots: due.slice(-3).map((slot) => new Date(slot)), more: due.length > 3 };
          }),
          `${name}, due in any three hours`,
        );
      }
    }
  });
});

/** The slots from `start` up to `end`, each found from the one before. */
function forward(schedule: Schedule, start: number, end: number): number[] {
  const slots: number[] = [];
  for (let slot = nextSlot(schedule, new Date(start - 1)); slot && slot.getTime() < end; slot = nextSlot(schedule, slot)) slots.push(slot.getTime());
  return slots;
}

/**
 * The slots in [start, end) by the rule of slots.ts, read minute by minute: a minute whose wall-clock
 * time the expression names is a slot, except (unless the hour field names every hour) a wall-clock
 * time read before; and unless the hour field names every hour, a jump forward over a named
 * wall-clock time makes the minute it lands on a slot.
 */
function slotsByRule(schedule: Schedule, start: number, end: number): number[] {
  const walls = CronExpressionParser.parse(schedule.cron, { tz: 'UTC' });
  const everyHour = walls.fields.hour.values.length === 24;
  const named = (wall: number) => walls.includesDate(new Date(wall));
  const slots = new Set<number>();
  const read = new Set<number>();
  let previous = wallAt(schedule.timezone, start - MINUTE);
  for (let minute = start; minute < end; minute += MINUTE) {
    const wall = wallAt(schedule.timezone, minute);
    for (let skipped = previous + MINUTE; !everyHour && skipped < wall; skipped += MINUTE) {
      if (named(skipped)) slots.add(minute);
    }
    if (named(wall) && (everyHour || !read.has(wall))) slots.add(minute);
    read.add(wall);
    previous = wall;
  }
  return [...slots];
}

t.test('dueSlots', async (t) => {
  const hourly = utc('0 * * * *');
  const due = (schedule: Schedule, from: string, now: string, cap = CATCH_UP_CAP) => {
    const { slots, more } = dueSlots(schedule, new Date(from), new Date(now), cap);
    return { slots: slots.map((slot) => slot.toISOString()), more };
  };

  t.test('none, one, several, with both ends included', async (t) => {
    t.strictSame(due(hourly, '2026-05-04T12:00:00.001Z', '2026-05-04T12:59:59.999Z'), { slots: [], more: false });
    t.strictSame(due(hourly, '2026-05-04T13:00:00.001Z', '2026-05-04T12:00:00.000Z'), { slots: [], more: false }, 'from after now');
    t.strictSame(due(hourly, '2026-05-04T12:00:00.001Z', '2026-05-04T13:00:05.000Z'), { slots: ['2026-05-04T13:00:00.000Z'], more: false });
    t.strictSame(due(hourly, '2026-05-04T13:00:00.000Z', '2026-05-04T13:00:00.000Z'), { slots: ['2026-05-04T13:00:00.000Z'], more: false });
    t.strictSame(due(utc('*/15 * * * *'), '2026-05-04T12:00:00.001Z', '2026-05-04T13:10:00.000Z'), {
      slots: ['2026-05-04T12:15:00.000Z', '2026-05-04T12:30:00.000Z', '2026-05-04T12:45:00.000Z', '2026-05-04T13:00:00.000Z'],
      more: false,
    });
  });

  t.test('the cap keeps the most recent slots and says that older ones were left out', async (t) => {
    const quarters = utc('*/15 * * * *');
    t.strictSame(due(quarters, '2026-05-04T12:00:00.001Z', '2026-05-04T13:10:00.000Z', 2), {
      slots: ['2026-05-04T12:45:00.000Z', '2026-05-04T13:00:00.000Z'],
      more: true,
    });
    t.strictSame(due(quarters, '2026-05-04T12:00:00.001Z', '2026-05-04T13:10:00.000Z', 4).more, false, 'exactly the cap leaves nothing out');
  });

  t.test('thirty days down, an every-second schedule gives its last 100 seconds', async (t) => {
    const { slots, more } = due({ cron: '* * * * * *', timezone: 'Europe/Berlin' }, '2026-01-01T00:00:00.001Z', '2026-01-31T00:00:00.500Z');
    const expected = Array.from({ length: CATCH_UP_CAP }, (_, index) => new Date(Date.parse('2026-01-30T23:58:21Z') + index * SECOND).toISOString());
    t.strictSame(slots, expected);
    t.equal(slots.at(-1), '2026-01-31T00:00:00.000Z');
    t.equal(more, true);
  });
});

t.test('catchUpPlan', async (t) => {
  const now = new Date('2026-05-04T12:00:00Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const onTime = [ago(ON_TIME_GRACE_MS), ago(0)];
  const late = [ago(3 * MINUTE), ago(2 * MINUTE), ago(ON_TIME_GRACE_MS + 1)];
  const cases: [string, Date[], Record<CatchUp, { fire: Date[]; missed: Date[] }>][] = [
    ['only on time', onTime, { skip: { fire: onTime, missed: [] }, latest: { fire: onTime, missed: [] }, all: { fire: onTime, missed: [] } }],
    ['only missed', late, { skip: { fire: [], missed: late }, latest: { fire: [late[2]!], missed: late.slice(0, 2) }, all: { fire: late, missed: [] } }],
    [
      'both',
      [...late, ...onTime],
      { skip: { fire: onTime, missed: late }, latest: { fire: onTime, missed: late }, all: { fire: [...late, ...onTime], missed: [] } },
    ],
    ['none', [], { skip: { fire: [], missed: [] }, latest: { fire: [], missed: [] }, all: { fire: [], missed: [] } }],
  ];
  for (const [name, due, plans] of cases) {
    for (const policy of ['skip', 'latest', 'all'] as const) {
      t.strictSame(catchUpPlan(due, now, policy, ON_TIME_GRACE_MS), plans[policy], `${name}, ${policy}`);
    }
  }
});

t.test("results do not depend on the process's TZ", async (t) => {
  const results = () =>
    JSON.stringify([
      slotsAfter({ cron: '30 2 * * *', timezone: 'Europe/Berlin' }, '2026-03-27T12:00:00Z', 3),
      slotsAfter(utc('0 0 * * MON'), '2026-05-04T12:00:00Z', 2),
      dueSlots({ cron: '*/15 * * * *', timezone: 'America/New_York' }, new Date('2026-11-01T04:00:00Z'), new Date('2026-11-01T07:00:00Z'), 100),
      scheduleProblem(utc('0 0 30 2 *')),
    ]);
  const before = results();
  const tz = process.env.TZ;
  t.teardown(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });
  for (const zone of ['Pacific/Kiritimati', 'America/Adak']) {
    process.env.TZ = zone;
    t.not(new Date('2026-05-04T12:00:00Z').getHours(), 12, `the process now runs in ${zone}`);
    t.equal(results(), before, zone);
  }
});
