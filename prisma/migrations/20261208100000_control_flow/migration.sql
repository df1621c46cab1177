-- Issue 22: control flow. A step is one of several kinds, nested in branches and loops; each run
-- of a nested step is its own row (its path names it), begun when it begins. Sub-flows are runs
-- with a parent; signals wait in their own table until a waitFor step takes them.
ALTER TABLE "execution_steps" ALTER COLUMN "action_id" DROP NOT NULL;
ALTER TABLE "execution_steps" ADD COLUMN "kind" TEXT NOT NULL DEFAULT 'action';
ALTER TABLE "execution_steps" ADD COLUMN "output" TEXT;
ALTER TABLE "execution_steps" ADD COLUMN "state" TEXT;

ALTER TABLE "executions" ADD COLUMN "parent_id" UUID;
ALTER TABLE "executions" ADD COLUMN "parent_step" TEXT;
ALTER TABLE "executions" ADD COLUMN "depth" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "executions" ADD COLUMN "timer_at" TIMESTAMPTZ(3);
CREATE INDEX "executions_org_id_parent_id_id_idx" ON "executions"("org_id", "parent_id", "id");

ALTER TABLE "flow_steps" ALTER COLUMN "action_id" DROP NOT NULL;

CREATE TABLE "execution_signals" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "execution_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "taken_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "execution_signals_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "execution_signals_execution_id_name_taken_by_id_idx" ON "execution_signals"("execution_id", "name", "taken_by", "id");
ALTER TABLE "execution_signals" ADD CONSTRAINT "execution_signals_org_id_execution_id_fkey" FOREIGN KEY ("org_id", "execution_id") REFERENCES "executions"("org_id", "id") ON DELETE CASCADE ON UPDATE CASCADE;
