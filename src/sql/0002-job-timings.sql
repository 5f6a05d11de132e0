-- Migration 2 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 2: the rest of the per-job timings (commit, body size) for tools/bench
-- and gradeq-admin plan
ALTER TABLE gradeq_jobs ADD COLUMN IF NOT EXISTS ms_commit float8,
 ADD COLUMN IF NOT EXISTS body_bytes int;
