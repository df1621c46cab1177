-- A flow's steps become one JSON document on the flow; flow_steps keeps the action each step
-- calls, for the database's integrity checks.

-- AlterTable
ALTER TABLE "flows" ADD COLUMN "steps" TEXT NOT NULL DEFAULT '[]';

-- Backfill the documents from the rows they replace.
UPDATE "flows" SET "steps" = "document"."steps"
FROM (
  SELECT "flow_id", json_agg(json_build_object('key', "key", 'actionId', "action_id", 'inputs', "inputs"::json) ORDER BY "position")::text AS "steps"
  FROM "flow_steps" GROUP BY "flow_id"
) AS "document"
WHERE "flows"."id" = "document"."flow_id";

-- AlterTable
ALTER TABLE "flow_steps" DROP COLUMN "inputs";
