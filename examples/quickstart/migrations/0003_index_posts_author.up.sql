-- migrations:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_author_id ON posts (author_id);
