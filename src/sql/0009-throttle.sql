-- Migration 9 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 9: the throughput budget of each release (learners a second shared by
-- all its consumers; a row with NULL, or none, means no budget), set by
-- gradeq-admin throttle, and what each consumer last reported of its
-- throttle (its share, the rate it paces with, its back-off state and
-- reason), for status.
CREATE TABLE gradeq_throttle (
 release text PRIMARY KEY,
 learners_per_s float8 CHECK (learners_per_s IS NULL OR learners_per_s > 0),
 updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL DEFAULT '');
CREATE TABLE gradeq_throttle_consumers (
 consumer text PRIMARY KEY, release text NOT NULL,
 budget float8, consumers int NOT NULL DEFAULT 1, share float8, rate float8,
 state text NOT NULL DEFAULT 'normal' CHECK (state IN ('normal', 'backoff')),
 reason text NOT NULL DEFAULT '', achieved float8,
 updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX gradeq_throttle_consumers_release ON gradeq_throttle_consumers (release, updated_at);
-- quiet hours: a budget per time window of the day (the server's time
-- zone; ends before starts wraps past midnight; NULL: no limit), over the
-- release's own budget while the window lasts
CREATE TABLE gradeq_throttle_windows (
 release text NOT NULL, starts time NOT NULL, ends time NOT NULL CHECK (ends <> starts),
 learners_per_s float8 CHECK (learners_per_s IS NULL OR learners_per_s > 0),
 PRIMARY KEY (release, starts));
-- the consumer role reads the budget and writes its reports (and the new
-- tables belong to gradeq_owner), as for every gradeq_ table
SELECT gradeq_setup_roles();
