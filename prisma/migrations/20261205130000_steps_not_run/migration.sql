-- Steps that never ran because their execution ended first (a step before failed, or the run was
-- abandoned) are `not_run`, a final state, instead of staying `pending` for ever.
ALTER TYPE "step_state" ADD VALUE 'not_run';
