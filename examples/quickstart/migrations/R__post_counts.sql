-- A repeatable migration: applied after the versioned ones, again whenever this file changes.
CREATE OR REPLACE VIEW post_counts AS
SELECT author_id, count(*) AS posts FROM posts GROUP BY author_id;
