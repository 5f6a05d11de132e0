-- Migration 10 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 10: the class of a failed job's last error (the gradeq-error-class
-- header's value: transient, permanent or exhausted), so that the
-- dashboard lists a dead job's class from its row; NULL for jobs that
-- failed before
ALTER TABLE gradeq_jobs ADD COLUMN error_class text
 CHECK (error_class IN ('transient', 'permanent', 'exhausted'));
