-- Migration 8 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 8: the incremental regrade's watermarks and the --follow loop.
-- gradeq_watermarks: per release and course, where the next incremental
-- run's selection starts (watermark: score rows modified at or after it,
-- less those whose writer the selection's snapshot saw: that run selected
-- them), the clock then (selected_at), the newest enrollment id seen, and
-- the course version and policy hash the selection was made under (a
-- change of either selects every learner again).
CREATE TABLE IF NOT EXISTS gradeq_watermarks (
 release text NOT NULL REFERENCES gradeq_releases(name),
 course_id text NOT NULL, watermark timestamptz NOT NULL,
 selected_at timestamptz NOT NULL, snapshot text NOT NULL,
 last_enrollment_id bigint NOT NULL,
 course_version text NOT NULL, policy_hash text NOT NULL, run_id uuid,
 updated_at timestamptz NOT NULL DEFAULT now(),
 PRIMARY KEY (release, course_id));
-- gradeq_follow_iterations: one row per iteration of gradeq-publish
-- --follow: its data window (the oldest watermark it started from, the
-- newest it recorded), its times, and what it published and graded
CREATE TABLE IF NOT EXISTS gradeq_follow_iterations (
 id bigserial PRIMARY KEY, release text NOT NULL, run_id uuid,
 window_from timestamptz, window_to timestamptz,
 started_at timestamptz NOT NULL, published_at timestamptz,
 finished_at timestamptz, select_seconds float8, seconds float8,
 learners bigint NOT NULL DEFAULT 0, jobs bigint NOT NULL DEFAULT 0,
 state text NOT NULL DEFAULT 'running'
  CHECK (state IN ('running', 'complete', 'failed', 'interrupted')),
 created_by text NOT NULL DEFAULT '');
CREATE INDEX gradeq_follow_iterations_release ON gradeq_follow_iterations (release, id);
SELECT gradeq_setup_roles() WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gradeq_owner');
