-- migrations:no-transaction
DROP TABLE t;
\i cleanup.sql
