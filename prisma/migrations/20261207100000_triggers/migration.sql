-- Issue 21: triggers start runs when a webhook arrives or a schedule fires. Every request a
-- webhook receives and every slot a schedule reaches is a delivery; the database keeps each
-- delivery id accepted once per trigger, and each slot once per trigger.
CREATE TYPE "trigger_type" AS ENUM ('webhook', 'schedule');
CREATE TYPE "delivery_outcome" AS ENUM ('accepted', 'rejected', 'duplicate', 'started', 'queued', 'skipped', 'missed');

CREATE TABLE "triggers" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "flow_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "type" "trigger_type" NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "version" INTEGER,
    "settings" TEXT NOT NULL,
    "hook_token" TEXT,
    "secret" TEXT,
    "next_fire_at" TIMESTAMPTZ(3),
    "last_fire_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "triggers_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "triggers_org_id_id_key" ON "triggers"("org_id", "id");
CREATE UNIQUE INDEX "triggers_hook_token_key" ON "triggers"("hook_token");
CREATE INDEX "triggers_org_id_flow_id_id_idx" ON "triggers"("org_id", "flow_id", "id");
CREATE INDEX "triggers_next_fire_at_idx" ON "triggers"("next_fire_at");
ALTER TABLE "triggers" ADD CONSTRAINT "triggers_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "triggers" ADD CONSTRAINT "triggers_org_id_flow_id_fkey" FOREIGN KEY ("org_id", "flow_id") REFERENCES "flows"("org_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "trigger_deliveries" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "trigger_id" UUID NOT NULL,
    "outcome" "delivery_outcome" NOT NULL,
    "reason" TEXT,
    "execution_id" UUID,
    "dedupe_key" TEXT,
    "duplicate_of" UUID,
    "headers" TEXT,
    "query" TEXT,
    "body" TEXT,
    "scheduled_at" TIMESTAMPTZ(3),
    "fired_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "trigger_deliveries_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "trigger_deliveries_trigger_id_dedupe_key_key" ON "trigger_deliveries"("trigger_id", "dedupe_key");
CREATE UNIQUE INDEX "trigger_deliveries_trigger_id_scheduled_at_key" ON "trigger_deliveries"("trigger_id", "scheduled_at");
CREATE INDEX "trigger_deliveries_org_id_trigger_id_id_idx" ON "trigger_deliveries"("org_id", "trigger_id", "id");
CREATE INDEX "trigger_deliveries_trigger_id_outcome_idx" ON "trigger_deliveries"("trigger_id", "outcome");
-- Whether any slot waits (overlap: queue) is asked by every ticker at every tick.
CREATE INDEX "trigger_deliveries_outcome_idx" ON "trigger_deliveries"("outcome");
ALTER TABLE "trigger_deliveries" ADD CONSTRAINT "trigger_deliveries_trigger_id_fkey" FOREIGN KEY ("trigger_id") REFERENCES "triggers"("id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "executions" ADD COLUMN "trigger_id" UUID;
CREATE INDEX "executions_trigger_id_status_idx" ON "executions"("trigger_id", "status");
