-- migrations:no-transacton
CREATE INDEX CONCURRENTLY i ON t (c);
