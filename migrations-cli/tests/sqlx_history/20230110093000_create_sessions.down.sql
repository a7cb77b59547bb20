DROP TABLE sessions;
DROP FUNCTION sessions_expire();
