-- Running flows: immutable flow versions, executions and their steps, tool credentials,
-- idempotency keys, and flows deleted without losing their history.

-- CreateEnum
CREATE TYPE "execution_state" AS ENUM ('queued', 'running', 'completed', 'failed', 'cancelled');

-- CreateEnum
CREATE TYPE "step_state" AS ENUM ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled');

-- AlterTable
ALTER TABLE "tools" ADD COLUMN "credentials" TEXT;

-- AlterTable
ALTER TABLE "flows" ADD COLUMN "output" TEXT,
ADD COLUMN "deleted_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "flow_versions" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "flow_id" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "steps" TEXT NOT NULL,
    "output" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "flow_versions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "executions" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "flow_id" UUID NOT NULL,
    "flow_version" INTEGER NOT NULL,
    "status" "execution_state" NOT NULL DEFAULT 'queued',
    "input" TEXT NOT NULL DEFAULT '{}',
    "output" TEXT,
    "error" TEXT,
    "retry_of" UUID,
    "created_by" UUID NOT NULL,
    "lease" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "executions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "execution_steps" (
    "execution_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "org_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "action_id" UUID NOT NULL,
    "status" "step_state" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "duration_ms" INTEGER,
    "request" TEXT,
    "response" TEXT,
    "error" TEXT,
    "reused_from" UUID,

    CONSTRAINT "execution_steps_pkey" PRIMARY KEY ("execution_id","position")
);

-- CreateTable
CREATE TABLE "idempotency_keys" (
    "org_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "operation" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "status" INTEGER NOT NULL,
    "body" TEXT NOT NULL,
    "location" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("org_id","key")
);

-- CreateIndex
CREATE INDEX "flow_versions_org_id_flow_id_id_idx" ON "flow_versions"("org_id", "flow_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "flow_versions_org_id_flow_id_version_key" ON "flow_versions"("org_id", "flow_id", "version");

-- CreateIndex
CREATE INDEX "executions_org_id_flow_id_id_idx" ON "executions"("org_id", "flow_id", "id");

-- CreateIndex
CREATE INDEX "executions_org_id_status_id_idx" ON "executions"("org_id", "status", "id");

-- CreateIndex
CREATE UNIQUE INDEX "executions_org_id_id_key" ON "executions"("org_id", "id");

-- CreateIndex
CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys"("created_at");

-- AddForeignKey
ALTER TABLE "flow_versions" ADD CONSTRAINT "flow_versions_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "flow_versions" ADD CONSTRAINT "flow_versions_org_id_flow_id_fkey" FOREIGN KEY ("org_id", "flow_id") REFERENCES "flows"("org_id", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "executions" ADD CONSTRAINT "executions_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "executions" ADD CONSTRAINT "executions_org_id_flow_id_flow_version_fkey" FOREIGN KEY ("org_id", "flow_id", "flow_version") REFERENCES "flow_versions"("org_id", "flow_id", "version") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "executions" ADD CONSTRAINT "executions_org_id_retry_of_fkey" FOREIGN KEY ("org_id", "retry_of") REFERENCES "executions"("org_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "execution_steps" ADD CONSTRAINT "execution_steps_org_id_execution_id_fkey" FOREIGN KEY ("org_id", "execution_id") REFERENCES "executions"("org_id", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Every existing flow's steps get each option's default, spliced into their text so that the
-- inputs stay exactly as they were sent (jsonb would reorder keys); then its current version is
-- kept as its first snapshot.
UPDATE "flows" SET "steps" = COALESCE((
  SELECT '[' || string_agg(
    left(step.value::text, -1) || ',"if":null,"timeoutMs":30000,"retry":{"maxAttempts":1,"initialDelayMs":1000,"maxDelayMs":30000},"continueOnError":false}',
    ',' ORDER BY step.position) || ']'
  FROM json_array_elements("steps"::json) WITH ORDINALITY AS step(value, position)
), '[]');

INSERT INTO "flow_versions" ("id", "org_id", "flow_id", "version", "name", "description", "steps", "created_at")
SELECT gen_random_uuid(), "org_id", "id", "version", "name", "description", "steps", "updated_at"
FROM "flows";
