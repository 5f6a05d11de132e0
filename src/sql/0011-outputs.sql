-- Migration 11 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 11: job outputs (issue 18). An output is built by the part jobs of one
-- run; each part is recorded once (its primary key), in the transaction
-- that completes its job, and the part that finds every part recorded
-- while it holds the output's row lock seals it: exactly once, however
-- often parts are retried, redelivered or replayed. An output outlives
-- its run's history (purge-history): run_id becomes NULL, the output is
-- deleted by its own keep_until or by hand.
CREATE TABLE gradeq_outputs (
 output_id uuid PRIMARY KEY,
 run_id uuid REFERENCES gradeq_runs ON DELETE SET NULL,
 course_id text NOT NULL, name text NOT NULL, format text NOT NULL DEFAULT 'csv',
 backend text NOT NULL, key text NOT NULL,
 state text NOT NULL DEFAULT 'pending'
 CHECK (state IN ('pending', 'sealed', 'failed', 'deleted')),
 parts int NOT NULL CHECK (parts > 0),
 size bigint, sha256 text,
 created_by text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now(),
 sealed_at timestamptz, keep_until timestamptz, use_once bool NOT NULL DEFAULT false,
 downloaded_at timestamptz, deleted_at timestamptz);
CREATE INDEX gradeq_outputs_course ON gradeq_outputs (course_id, created_at);
CREATE INDEX gradeq_outputs_run ON gradeq_outputs (run_id);
CREATE TABLE gradeq_output_parts (
 output_id uuid NOT NULL REFERENCES gradeq_outputs ON DELETE CASCADE,
 part int NOT NULL CHECK (part >= 0),
 job_id uuid NOT NULL, rows int NOT NULL, size bigint NOT NULL, sha256 text NOT NULL,
 written_at timestamptz NOT NULL DEFAULT now(),
 PRIMARY KEY (output_id, part));
