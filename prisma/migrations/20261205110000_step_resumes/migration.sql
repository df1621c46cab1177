-- How often a step was resumed after its worker stopped mid-step: past TOLSTOY_STEP_RESUME_LIMIT, its run fails.
ALTER TABLE "execution_steps" ADD COLUMN "resumes" INTEGER NOT NULL DEFAULT 0;
