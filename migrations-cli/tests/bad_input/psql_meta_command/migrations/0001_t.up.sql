\set ON_ERROR_STOP on
\connect app
CREATE TABLE t (x text);
SELECT E'\n', $$\x$$;
