-- Migration 5 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 5: a run settles in one place: the update that brings its counters
-- to its total makes it complete, or failed when a job is dead
CREATE FUNCTION gradeq_settle_run() RETURNS trigger LANGUAGE plpgsql AS $$
 BEGIN
  IF NEW.state = 'running' AND NEW.jobs_complete + NEW.jobs_dead + NEW.jobs_canceled
   + NEW.jobs_discarded >= NEW.jobs_total THEN
   NEW.state := CASE WHEN NEW.jobs_dead > 0 THEN 'failed' ELSE 'complete' END;
   NEW.finished_at := now();
  END IF;
  RETURN NEW;
 END $$;
-- before gradeq_runs_transition (triggers fire in name order), which
-- then checks the settled state
CREATE TRIGGER gradeq_runs_settle BEFORE UPDATE ON gradeq_runs
 FOR EACH ROW EXECUTE FUNCTION gradeq_settle_run();
