-- Issue 23, review: runs refused a limited tool's call were all told to come back when the oldest
-- call of its log leaves the window (or the pause ends), the same moment for all: they came back at
-- once, one went, and the others were refused again, so N waiting runs made about N²/2 turns.
-- `next_turn_at` is the end of the line of refused calls: each refused call is handed the later of
-- its earliest chance and that end, which then moves on by the window over the limit, so refused
-- calls come back spread at the tool's rate (the line reaches at most an hour past a call's earliest
-- chance). A call that comes back is still counted by the log.
ALTER TABLE "tools" ADD COLUMN "next_turn_at" TIMESTAMPTZ(6);

CREATE OR REPLACE FUNCTION "reserve_tool_call"(tool UUID) RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
  limits RECORD;
  oldest RECORD;
  now_ TIMESTAMPTZ;
  window_ INTERVAL;
  earliest TIMESTAMPTZ;
  top INTEGER;
BEGIN
  SELECT rate_limit_requests AS requests FROM tools WHERE id = tool INTO limits;
  IF FOUND AND limits.requests IS NOT NULL THEN
    -- Only a limited tool takes the lock; the others read the pause without waiting.
    PERFORM 1 FROM tools WHERE id = tool FOR NO KEY UPDATE;
  END IF;
  SELECT rate_limit_requests AS requests, rate_limit_per_ms AS per_ms, paused_until, next_turn_at FROM tools WHERE id = tool INTO limits;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  now_ := clock_timestamp();
  IF limits.requests IS NULL THEN
    IF limits.paused_until > now_ THEN
      RETURN ceil(extract(epoch FROM limits.paused_until - now_) * 1000);
    END IF;
    RETURN 0;
  END IF;
  window_ := (limits.per_ms + least(limits.per_ms / 10, 250)) * interval '1 millisecond';
  IF limits.paused_until > now_ THEN
    earliest := limits.paused_until;
  ELSE
    -- Fewer calls than the limit since it was set: the log grows by one slot, as calls are made.
    SELECT max(slot) FROM tool_calls WHERE tool_id = tool INTO top;
    IF top IS NULL OR top + 1 < limits.requests THEN
      INSERT INTO tool_calls (tool_id, slot, at) VALUES (tool, COALESCE(top + 1, 0), now_);
      RETURN 0;
    END IF;
    SELECT slot, at FROM tool_calls WHERE tool_id = tool ORDER BY at, slot LIMIT 1 INTO oldest;
    IF oldest.at <= now_ - window_ THEN
      UPDATE tool_calls SET at = now_ WHERE tool_id = tool AND slot = oldest.slot;
      RETURN 0;
    END IF;
    earliest := oldest.at + window_;
  END IF;
  -- Refused: the later of its earliest chance and the end of the line, which moves on by one call's
  -- share of the window. At most an hour later than its chance: turns handed to runs cancelled
  -- since hold up the others no longer.
  earliest := least(greatest(earliest, limits.next_turn_at), earliest + interval '1 hour');
  UPDATE tools SET next_turn_at = earliest + window_ / limits.requests WHERE id = tool;
  RETURN ceil(extract(epoch FROM earliest - now_) * 1000);
END;
$$;
