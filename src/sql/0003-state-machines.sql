-- Migration 3 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 3: the database enforces the state machines of src/states.c; migrate
-- refills gradeq_state_transitions from that table on every run
CREATE TABLE gradeq_state_transitions (
 kind text NOT NULL, from_state text NOT NULL, to_state text NOT NULL,
 PRIMARY KEY (kind, from_state, to_state));
CREATE FUNCTION gradeq_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
 BEGIN
  IF NOT EXISTS (SELECT 1 FROM gradeq_state_transitions WHERE kind = TG_ARGV[0]
   AND from_state = OLD.state AND to_state = NEW.state) THEN
   RAISE EXCEPTION 'illegal % transition % -> %', TG_ARGV[0], OLD.state, NEW.state
    USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
 END $$;
CREATE TRIGGER gradeq_jobs_transition BEFORE UPDATE OF state ON gradeq_jobs
 FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
 EXECUTE FUNCTION gradeq_check_transition('job');
CREATE TRIGGER gradeq_runs_transition BEFORE UPDATE OF state ON gradeq_runs
 FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
 EXECUTE FUNCTION gradeq_check_transition('run');
