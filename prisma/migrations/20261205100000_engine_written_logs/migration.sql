-- The audit trail: whether the engine wrote an execution log (read-only then, for everyone) or a
-- member did. A log is the engine's unless written through POST /execution-logs, so that any way
-- of writing one that forgets to say leaves it read-only rather than editable. Of the logs
-- already kept, those of a run of their organization are the engine's; the others were written
-- by hand (a hand-written log naming a real run stays read-only: the safe side).
ALTER TABLE "execution_logs" ADD COLUMN "written_by_engine" BOOLEAN NOT NULL DEFAULT true;

UPDATE "execution_logs" AS l SET "written_by_engine" = false
WHERE NOT EXISTS (SELECT 1 FROM "executions" AS e WHERE e."org_id" = l."org_id" AND e."id"::text = l."execution_id");
