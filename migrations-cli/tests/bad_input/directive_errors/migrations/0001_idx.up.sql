-- migrations:lock-timeout=5
-- migrations:statement-timeout
-- migrations:no-transaction
-- migrations:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);
