-- Reverting past this point drops the sessions: refuse while any is still valid.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM sessions WHERE expires_at > now()) THEN
        RAISE EXCEPTION 'sessions are still valid; expire them before reverting';
    END IF;
END;
$$;
