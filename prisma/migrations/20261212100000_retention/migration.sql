-- Retention (issue 24): each organization keeps its finished executions, their logs and its
-- deliveries for a number of days; a maintenance job removes what is older.
ALTER TABLE "organizations" ADD COLUMN "retention_executions_days" INTEGER NOT NULL DEFAULT 30;

-- Removing an execution first unlinks the retries that name it: this finds them without a scan.
CREATE INDEX "executions_retried_idx" ON "executions"("org_id", "retry_of") WHERE "retry_of" IS NOT NULL;
