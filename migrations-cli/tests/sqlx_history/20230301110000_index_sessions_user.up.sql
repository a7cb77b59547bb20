-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_user_id ON sessions (user_id);
