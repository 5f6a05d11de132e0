-- The platform's input tables: gradeq never writes them; created only for
-- demos and tests (migrate --with-input-tables). Joined as the migrations are.
CREATE TABLE IF NOT EXISTS courses (
 course_id text PRIMARY KEY, version text NOT NULL,
 edited_at timestamptz NOT NULL, grading_policy jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS course_blocks (
 course_id text NOT NULL, usage_key text NOT NULL, block_type text NOT NULL,
 parent_key text, position int NOT NULL, graded bool NOT NULL DEFAULT true,
 format text, weight float8, max_score float8,
 PRIMARY KEY (course_id, usage_key));
CREATE TABLE IF NOT EXISTS student_courseenrollment (
 id bigserial PRIMARY KEY, user_id int NOT NULL, course_id text NOT NULL,
 is_active bool NOT NULL, mode text NOT NULL, created timestamptz NOT NULL,
 UNIQUE (user_id, course_id));
CREATE INDEX IF NOT EXISTS student_courseenrollment_course_id
 ON student_courseenrollment (course_id, id);
CREATE TABLE IF NOT EXISTS courseware_studentmodule (
 id bigserial PRIMARY KEY, student_id int NOT NULL, course_id text NOT NULL,
 module_state_key text NOT NULL, module_type text NOT NULL,
 grade float8, max_grade float8, created timestamptz NOT NULL,
 modified timestamptz NOT NULL,
 UNIQUE (student_id, course_id, module_state_key));
-- the platform indexes 'modified' (db_index): the incremental selection
-- reads the rows changed since its watermark as an index range
CREATE INDEX IF NOT EXISTS courseware_studentmodule_course_id_modified
 ON courseware_studentmodule (course_id, modified);
CREATE TABLE IF NOT EXISTS student_courseaccessrole (
 id bigserial PRIMARY KEY, user_id int NOT NULL, course_id text NOT NULL,
 role text NOT NULL, UNIQUE (user_id, course_id, role));
CREATE INDEX IF NOT EXISTS student_courseaccessrole_course
 ON student_courseaccessrole (course_id, user_id);
