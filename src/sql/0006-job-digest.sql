-- Migration 6 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 6: the digest of a job's user ids, recorded at publish time (SHA-256 of
-- the ids as little-endian int32 in batch order), so that a consumer can
-- check a job body against its row; NULL for jobs recorded before
ALTER TABLE gradeq_jobs ADD COLUMN users_digest bytea;
