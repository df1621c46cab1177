-- Issue 23: a tool's rate limit, shared by every worker, and its pause after a 429.
-- `rate_limit_requests` calls per `rate_limit_per_ms` (both null: unlimited); `paused_until` is set
-- when the tool answered 429 with Retry-After, and no call goes before it.
ALTER TABLE "tools" ADD COLUMN "rate_limit_requests" INTEGER,
  ADD COLUMN "rate_limit_per_ms" INTEGER,
  ADD COLUMN "paused_until" TIMESTAMPTZ(6);
ALTER TABLE "tools" ADD CONSTRAINT "tools_rate_limit_check"
  CHECK ((rate_limit_requests IS NULL) = (rate_limit_per_ms IS NULL) AND rate_limit_requests BETWEEN 1 AND 10000 AND rate_limit_per_ms BETWEEN 100 AND 86400000);

-- A sliding log: the times of a limited tool's last `rate_limit_requests` calls, one row per slot.
-- A call may go when the oldest of them is older than the window (it then takes that slot), so no
-- window ever holds more calls (a token bucket would allow twice as many across a window's edge).
-- The window is `rate_limit_per_ms` and a margin, a tenth of it but at most 250 ms: the tool counts
-- calls when they reach it, a few milliseconds after they were counted here, each a little more or
-- less late than the others. It grows by a slot a call up to the limit (so it holds no more rows
-- than calls were made), and is emptied when the limit changes.
CREATE TABLE "tool_calls" (
    "tool_id" UUID NOT NULL,
    "slot" INTEGER NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL,
    CONSTRAINT "tool_calls_pkey" PRIMARY KEY ("tool_id", "slot")
);
CREATE INDEX "tool_calls_tool_id_at_idx" ON "tool_calls"("tool_id", "at");
ALTER TABLE "tool_calls" ADD CONSTRAINT "tool_calls_tool_id_fkey" FOREIGN KEY ("tool_id") REFERENCES "tools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Reserves one call to a tool by the database's clock: 0 when it may go now (its time is logged),
-- otherwise how many milliseconds until it may try again (the pause's end, or when the oldest call
-- of the log leaves the window). A limited tool's reservations are serialized by its row lock,
-- held for this one statement: one round trip, so that workers hold it for microseconds.
CREATE FUNCTION "reserve_tool_call"(tool UUID) RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
  limits RECORD;
  oldest RECORD;
  now_ TIMESTAMPTZ;
  window_ INTERVAL;
  top INTEGER;
BEGIN
  SELECT rate_limit_requests AS requests FROM tools WHERE id = tool INTO limits;
  IF FOUND AND limits.requests IS NOT NULL THEN
    -- Only a limited tool takes the lock; the others read the pause without waiting.
    PERFORM 1 FROM tools WHERE id = tool FOR NO KEY UPDATE;
  END IF;
  SELECT rate_limit_requests AS requests, rate_limit_per_ms AS per_ms, paused_until FROM tools WHERE id = tool INTO limits;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  now_ := clock_timestamp();
  IF limits.paused_until > now_ THEN
    RETURN ceil(extract(epoch FROM limits.paused_until - now_) * 1000);
  END IF;
  IF limits.requests IS NULL THEN
    RETURN 0;
  END IF;
  -- Fewer calls than the limit since it was set: the log grows by one slot, as calls are made.
  SELECT max(slot) FROM tool_calls WHERE tool_id = tool INTO top;
  IF top IS NULL OR top + 1 < limits.requests THEN
    INSERT INTO tool_calls (tool_id, slot, at) VALUES (tool, COALESCE(top + 1, 0), now_);
    RETURN 0;
  END IF;
  SELECT slot, at FROM tool_calls WHERE tool_id = tool ORDER BY at, slot LIMIT 1 INTO oldest;
  window_ := (limits.per_ms + least(limits.per_ms / 10, 250)) * interval '1 millisecond';
  IF oldest.at > now_ - window_ THEN
    RETURN ceil(extract(epoch FROM oldest.at + window_ - now_) * 1000);
  END IF;
  UPDATE tool_calls SET at = now_ WHERE tool_id = tool AND slot = oldest.slot;
  RETURN 0;
END;
$$;
