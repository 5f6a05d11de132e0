-- Migration 1 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 1: output tables and run/job bookkeeping
CREATE TABLE IF NOT EXISTS grades_persistentsubsectiongrade (
 id bigserial PRIMARY KEY, user_id int NOT NULL, course_id text NOT NULL,
 usage_key text NOT NULL, course_version text NOT NULL,
 earned_all float8 NOT NULL, possible_all float8 NOT NULL,
 earned_graded float8 NOT NULL, possible_graded float8 NOT NULL,
 first_attempted timestamptz, created timestamptz NOT NULL,
 modified timestamptz NOT NULL,
 UNIQUE (course_id, user_id, usage_key));
CREATE TABLE IF NOT EXISTS grades_persistentcoursegrade (
 id bigserial PRIMARY KEY, user_id int NOT NULL, course_id text NOT NULL,
 course_version text NOT NULL, grading_policy_hash text NOT NULL,
 percent_grade float8 NOT NULL, letter_grade text NOT NULL,
 passed_timestamp timestamptz, course_edited_timestamp timestamptz,
 created timestamptz NOT NULL, modified timestamptz NOT NULL,
 UNIQUE (course_id, user_id));
CREATE TABLE gradeq_releases (
 name text PRIMARY KEY, state text NOT NULL DEFAULT 'active'
  CHECK (state IN ('active','promoted','draining','retired')),
 schema_version int NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
 updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL DEFAULT '');
-- exactly one promoted release, enforced by the database
CREATE UNIQUE INDEX gradeq_releases_one_promoted ON gradeq_releases ((true))
 WHERE state = 'promoted';
CREATE TABLE gradeq_runs (
 run_id uuid PRIMARY KEY, release text NOT NULL REFERENCES gradeq_releases(name),
 state text NOT NULL, options jsonb NOT NULL DEFAULT '{}',
 courses int NOT NULL DEFAULT 0, jobs_total int NOT NULL DEFAULT 0,
 learners_total bigint NOT NULL DEFAULT 0,
 jobs_complete int NOT NULL DEFAULT 0, jobs_dead int NOT NULL DEFAULT 0,
 jobs_canceled int NOT NULL DEFAULT 0, jobs_discarded int NOT NULL DEFAULT 0,
 learners_complete bigint NOT NULL DEFAULT 0,
 created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz,
 finished_at timestamptz, created_by text NOT NULL DEFAULT '');
CREATE TABLE gradeq_jobs (
 job_id uuid PRIMARY KEY, run_id uuid NOT NULL REFERENCES gradeq_runs ON DELETE CASCADE,
 course_id text NOT NULL, seq int NOT NULL, learners int NOT NULL,
 state text NOT NULL DEFAULT 'pending', attempts int NOT NULL DEFAULT 0,
 last_error text, consumer text,
 created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz,
 finished_at timestamptz,
 ms_load float8, ms_fetch float8, ms_compute float8, ms_write float8,
 ms_total float8, graded int, skipped int, subsections int, score_rows int);
CREATE INDEX gradeq_jobs_run ON gradeq_jobs (run_id, state);
CREATE TABLE gradeq_job_events (
 id bigserial PRIMARY KEY, job_id uuid, run_id uuid NOT NULL,
 from_state text, to_state text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
 by text NOT NULL DEFAULT '', detail text);
CREATE INDEX gradeq_job_events_run ON gradeq_job_events (run_id, at);
