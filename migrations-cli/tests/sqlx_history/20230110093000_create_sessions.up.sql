CREATE TABLE sessions (
    token text PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

CREATE FUNCTION sessions_expire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sessions WHERE expires_at < now();
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_expire AFTER INSERT ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_expire();
