-- Issue 23: per-flow concurrency. A flow's `concurrency` ({"limit": n, "key": "<expression>"}, as
-- JSON) is versioned with its steps. Each execution of a version that has one stores, when it is
-- created, its key's value and the limit; `awaits_slot` marks a queued run that a claim found
-- without a free slot, whose job ended: the run that frees a slot wakes it.
ALTER TABLE "flows" ADD COLUMN "concurrency" TEXT;
ALTER TABLE "flow_versions" ADD COLUMN "concurrency" TEXT;

ALTER TABLE "executions" ADD COLUMN "concurrency_key" TEXT;
ALTER TABLE "executions" ADD COLUMN "concurrency_limit" INTEGER;
ALTER TABLE "executions" ADD COLUMN "awaits_slot" BOOLEAN NOT NULL DEFAULT false;

-- The runs holding or waiting for the slots of one (flow, key), oldest first.
CREATE INDEX "executions_flow_id_concurrency_key_status_created_at_idx" ON "executions"("flow_id", "concurrency_key", "status", "created_at");
