-- BEGIN, CASE and END outside routine definitions, and inside them where they do not count.
CREATE TABLE kw (begin int, "end" int, "case" int);
SELECT begin, "end", CASE WHEN begin > 0 THEN 1 END FROM kw;
CREATE FUNCTION kw_f(begin int, "end" int) RETURNS int LANGUAGE sql
    BEGIN ATOMIC
        SELECT kw_f.begin + kw_f.end + (CASE WHEN true THEN 1 END);
        SELECT kw.case FROM kw WHERE kw.begin = 1;
        SELECT 'END; END; END';
    END;
CREATE OR REPLACE FUNCTION kw_g() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE WHEN true THEN NULL; END CASE;
    RETURN NEW;
END;
$$;
BEGIN;
END
