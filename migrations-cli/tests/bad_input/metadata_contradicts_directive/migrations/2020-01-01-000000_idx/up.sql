-- migrations:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);
