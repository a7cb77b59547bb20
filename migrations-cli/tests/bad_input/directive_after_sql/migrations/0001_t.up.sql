CREATE TABLE t (c int);
-- migrations:no-transaction
CREATE INDEX CONCURRENTLY i ON t (c);
