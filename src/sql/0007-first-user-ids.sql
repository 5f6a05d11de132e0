-- Migration 7 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 7: the first (at most 10) user ids of each job, recorded at publish
-- time, so that the dashboard shows whom a dead job was for without
-- reading the dead queue; NULL for jobs recorded before
ALTER TABLE gradeq_jobs ADD COLUMN first_user_ids int[];
