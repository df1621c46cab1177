-- Issue 20: a run records its trigger and no longer needs a member; steps are identified by path;
-- a step waiting to be tried again is `waiting` until `wake_at`, a durable timer in the queue.
ALTER TYPE "step_state" ADD VALUE 'waiting' BEFORE 'completed';

ALTER TABLE "executions" ADD COLUMN "trigger" TEXT NOT NULL DEFAULT '{"type":"api"}',
  ADD COLUMN "retry_from_step" TEXT,
  ALTER COLUMN "created_by" DROP NOT NULL;
UPDATE "executions" SET "trigger" = json_build_object('type', 'api', 'userId', "created_by")::text;

ALTER TABLE "execution_steps" ADD COLUMN "path" TEXT, ADD COLUMN "wake_at" TIMESTAMPTZ(3);
UPDATE "execution_steps" SET "path" = "key";
ALTER TABLE "execution_steps" ALTER COLUMN "path" SET NOT NULL,
  DROP CONSTRAINT "execution_steps_pkey",
  ADD CONSTRAINT "execution_steps_pkey" PRIMARY KEY ("execution_id", "path");

ALTER TABLE "execution_logs" ALTER COLUMN "user_id" DROP NOT NULL;
