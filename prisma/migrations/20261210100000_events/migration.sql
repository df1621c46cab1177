-- Issue 23: events out. A subscription sends an organization's events to a URL, signed (Standard
-- Webhooks). Each event is stored, once per subscription that wants it, by a trigger on the row
-- whose change it reports: in the same transaction, whatever statement made the change, so a
-- crash loses none. Error flows: a failed run whose flow names `onFailure` leaves a hand-off in
-- that same transaction, and a worker starts the error flow from it once.
CREATE TABLE "subscriptions" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "description" TEXT,
    "events" TEXT[] NOT NULL,
    "flow_id" UUID,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "disabled_reason" TEXT,
    "secret" TEXT NOT NULL,
    "previous_secret" TEXT,
    "previous_secret_until" TIMESTAMPTZ(3),
    "failing_since" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "subscriptions_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "subscriptions_org_id_id_key" ON "subscriptions"("org_id", "id");
ALTER TABLE "subscriptions" ADD CONSTRAINT "subscriptions_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "subscriptions" ADD CONSTRAINT "subscriptions_org_id_flow_id_fkey" FOREIGN KEY ("org_id", "flow_id") REFERENCES "flows"("org_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TYPE "event_delivery_state" AS ENUM ('pending', 'delivered', 'failed');

CREATE TABLE "event_deliveries" (
    "id" UUID NOT NULL,
    -- The order events happened in: per execution, a delivery waits for the ones before it.
    "seq" BIGSERIAL NOT NULL,
    "org_id" UUID NOT NULL,
    "subscription_id" UUID NOT NULL,
    "execution_id" UUID,
    "event" TEXT NOT NULL,
    -- The body as sent, byte for byte, so every attempt signs the same bytes.
    "payload" TEXT NOT NULL,
    "status" "event_delivery_state" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_status" INTEGER,
    "last_error" TEXT,
    "next_attempt_at" TIMESTAMPTZ(3) DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),
    CONSTRAINT "event_deliveries_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "event_deliveries_org_id_subscription_id_id_idx" ON "event_deliveries"("org_id", "subscription_id", "id");
-- The deliveries due, and (per execution) whether an earlier one is still pending.
CREATE INDEX "event_deliveries_status_next_attempt_at_idx" ON "event_deliveries"("status", "next_attempt_at");
CREATE INDEX "event_deliveries_subscription_id_execution_id_seq_idx" ON "event_deliveries"("subscription_id", "execution_id", "seq");
ALTER TABLE "event_deliveries" ADD CONSTRAINT "event_deliveries_subscription_id_fkey" FOREIGN KEY ("subscription_id") REFERENCES "subscriptions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "flows" ADD COLUMN "on_failure_flow_id" UUID;
ALTER TABLE "flow_versions" ADD COLUMN "on_failure_flow_id" UUID;

-- A failed run whose version names an error flow, until a worker starts it (in the transaction that deletes this).
CREATE TABLE "error_flow_handoffs" (
    "execution_id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "flow_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "error_flow_handoffs_pkey" PRIMARY KEY ("execution_id")
);

-- The event an execution's change is, as the API shows it (output only up to 4 KiB of JSON).
CREATE FUNCTION "execution_event_data"(e "executions") RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', e.id, 'flowId', e.flow_id, 'flowVersion', e.flow_version, 'status', e.status,
    'trigger', e.trigger::json,
    'parent', CASE WHEN e.parent_id IS NULL THEN NULL ELSE json_build_object('executionId', e.parent_id, 'step', e.parent_step) END,
    'error', e.error::json,
    'output', CASE WHEN octet_length(e.output) <= 4096 THEN e.output::json END,
    'outputOmitted', COALESCE(octet_length(e.output) > 4096, false),
    'createdAt', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'startedAt', to_char(e.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'finishedAt', to_char(e.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- Stores one delivery of the event for each enabled subscription of the organization that wants it.
CREATE FUNCTION "record_event"(org uuid, flow uuid, execution uuid, kind text, data json) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  stored int;
BEGIN
  INSERT INTO event_deliveries (id, org_id, subscription_id, execution_id, event, payload)
  SELECT gen_random_uuid(), s.org_id, s.id, execution, kind,
    json_build_object('type', kind, 'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'data', data)::text
  FROM subscriptions s
  WHERE s.org_id = org AND s.enabled AND kind = ANY(s.events) AND (s.flow_id IS NULL OR s.flow_id = flow);
  GET DIAGNOSTICS stored = ROW_COUNT;
  IF stored > 0 THEN PERFORM pg_notify('tolstoy_events', org::text); END IF;
END
$$;

CREATE FUNCTION "execution_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  handler uuid;
BEGIN
  -- The summary is built only for an organization with a subscription.
  IF EXISTS (SELECT 1 FROM subscriptions s WHERE s.org_id = NEW.org_id AND s.enabled) THEN
    IF OLD.started_at IS NULL AND NEW.started_at IS NOT NULL THEN
      PERFORM record_event(NEW.org_id, NEW.flow_id, NEW.id, 'execution.started', execution_event_data(NEW));
    END IF;
    IF OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('completed', 'failed', 'cancelled') THEN
      PERFORM record_event(NEW.org_id, NEW.flow_id, NEW.id, 'execution.' || NEW.status::text, execution_event_data(NEW));
    END IF;
  END IF;
  IF OLD.status IS DISTINCT FROM NEW.status AND NEW.status = 'failed' THEN
    SELECT v.on_failure_flow_id INTO handler FROM flow_versions v
    WHERE v.org_id = NEW.org_id AND v.flow_id = NEW.flow_id AND v.version = NEW.flow_version;
    -- An error flow's run, or any run under one, never starts another.
    IF handler IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM executions r WHERE r.id IN (NEW.id, NEW.root_id) AND r.trigger::json->>'type' = 'error'
    ) THEN
      INSERT INTO error_flow_handoffs (execution_id, org_id, flow_id) VALUES (NEW.id, NEW.org_id, handler) ON CONFLICT DO NOTHING;
      PERFORM pg_notify('tolstoy_events', NEW.org_id::text);
    END IF;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER "executions_events" AFTER UPDATE OF "status", "started_at" ON "executions"
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR (OLD.started_at IS NULL AND NEW.started_at IS NOT NULL))
  EXECUTE FUNCTION "execution_changed"();

CREATE FUNCTION "trigger_delivery_rejected"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  flow uuid;
BEGIN
  SELECT t.flow_id INTO flow FROM triggers t WHERE t.id = NEW.trigger_id;
  PERFORM record_event(NEW.org_id, flow, NULL, 'trigger.rejected', json_build_object(
    'triggerId', NEW.trigger_id, 'flowId', flow, 'deliveryId', NEW.id, 'reason', NEW.reason,
    'receivedAt', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')));
  RETURN NULL;
END
$$;

CREATE TRIGGER "trigger_deliveries_rejected" AFTER INSERT ON "trigger_deliveries"
  FOR EACH ROW WHEN (NEW.outcome = 'rejected')
  EXECUTE FUNCTION "trigger_delivery_rejected"();
