-- A tree of sub-flows' runs is bounded (TOLSTOY_RUN_TREE_LIMIT): each run knows its tree's first
-- run, whose row counts the runs of the tree as they start.
ALTER TABLE "executions" ADD COLUMN "root_id" UUID;
ALTER TABLE "executions" ADD COLUMN "tree_runs" INTEGER NOT NULL DEFAULT 1;
