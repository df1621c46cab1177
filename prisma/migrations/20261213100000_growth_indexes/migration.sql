-- Issue 24, growth: retention removes the logs members wrote (the engine's go with their runs)
-- by each organization's id range. Without an index of their own, that range is every log of the
-- organization older than its period, engine's included: with a few hundred thousand of them the
-- statement passed the 5 s statement timeout (bench/GROWTH.md). Members' logs are few: this index
-- holds only them.
CREATE INDEX "execution_logs_written_idx" ON "execution_logs"("org_id", "id") WHERE NOT "written_by_engine";
