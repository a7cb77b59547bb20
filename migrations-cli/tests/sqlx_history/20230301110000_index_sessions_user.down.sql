-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS sessions_user_id;
