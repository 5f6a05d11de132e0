-- Migration 4 of gradeq (never edit once shipped: add a new file).
-- Embedded at build time; the lines are joined WITHOUT newlines, so each
-- line starts with the space it needs, and the text is byte for byte
-- what the database received. Whole-line comments (--) are dropped.
-- 4: least-privilege roles (README, Production): gradeq_owner owns
-- gradeq's objects, gradeq_consumer reads the input tables and writes
-- only the output and gradeq_* tables; both NOLOGIN, granted to login
-- roles. Each step that the migrating user may not take is skipped with
-- a NOTICE (a WARNING, shown by gradeq-admin, when the roles cannot be
-- created); a superuser can finish later with SELECT gradeq_setup_roles()
CREATE OR REPLACE FUNCTION gradeq_setup_roles() RETURNS void LANGUAGE plpgsql AS $$
 DECLARE r record; role text; sch text := quote_ident(current_schema());
 BEGIN
  FOREACH role IN ARRAY ARRAY['gradeq_owner', 'gradeq_consumer'] LOOP
   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
    BEGIN EXECUTE format('CREATE ROLE %I NOLOGIN', role);
    EXCEPTION WHEN insufficient_privilege THEN
     RAISE WARNING 'gradeq: role % not created: % lacks CREATEROLE; as a superuser run
 CREATE ROLE % NOLOGIN, then SELECT gradeq_setup_roles()', role, current_user, role;
     RETURN;
    END;
   END IF;
  END LOOP;
  BEGIN EXECUTE format('GRANT gradeq_owner TO %I', current_user);
  EXCEPTION WHEN OTHERS THEN
   RAISE NOTICE 'gradeq: % not made a member of gradeq_owner: %', current_user, SQLERRM;
  END;
  BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %s TO gradeq_consumer', sch);
-- the owner checks foreign keys and runs later migrations
   EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %s TO gradeq_owner', sch);
  EXCEPTION WHEN OTHERS THEN
   RAISE NOTICE 'gradeq: privileges on schema % not granted: %', sch, SQLERRM;
  END;
  FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c
   WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'S')
   AND (c.relname LIKE 'gradeq\_%' OR c.relname LIKE 'grades\_persistent%') LOOP
   BEGIN
    IF r.relkind = 'r' THEN
     EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO gradeq_consumer', r.obj);
     EXECUTE format('ALTER TABLE %s OWNER TO gradeq_owner', r.obj);
    ELSE
     EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO gradeq_consumer', r.obj);
    END IF;
   EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'gradeq: privileges on % not set: %', r.obj, SQLERRM;
   END;
  END LOOP;
  BEGIN ALTER FUNCTION gradeq_check_transition() OWNER TO gradeq_owner;
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  FOR r IN SELECT t FROM unnest(ARRAY['courses', 'course_blocks',
   'student_courseenrollment', 'courseware_studentmodule']) AS t
   WHERE to_regclass(t) IS NOT NULL LOOP
   BEGIN EXECUTE format('GRANT SELECT ON %I TO gradeq_consumer', r.t);
   EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'gradeq: SELECT on input table % not granted (%): ask its owner to
 GRANT SELECT ON % TO gradeq_consumer', r.t, SQLERRM, r.t;
   END;
  END LOOP;
  BEGIN
   EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE gradeq_owner IN SCHEMA %s GRANT
 SELECT, INSERT, UPDATE ON TABLES TO gradeq_consumer', sch);
   EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE gradeq_owner IN SCHEMA %s GRANT
 USAGE, SELECT ON SEQUENCES TO gradeq_consumer', sch);
  EXCEPTION WHEN OTHERS THEN
   RAISE NOTICE 'gradeq: default privileges of gradeq_owner not set: %', SQLERRM;
  END;
 END $$;
SELECT gradeq_setup_roles();
