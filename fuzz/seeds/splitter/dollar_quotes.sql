-- Dollar quotes holding semicolons, other tags and bare $$.
CREATE FUNCTION f_plain() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
CREATE FUNCTION f_tagged() RETURNS text AS $fn$
BEGIN
    RETURN $$;$$ || $x$ $$ ; $x$ || ';';
END;
$fn$ LANGUAGE plpgsql;
CREATE FUNCTION f_$weird() RETURNS text AS $_1$ $_2$ ; $_1$ LANGUAGE sql;
DO $do$
BEGIN
    EXECUTE 'SELECT 1; SELECT 2';
    PERFORM $q$ it's ; "not" /* a comment */ -- either
    $q$;
END
$do$;
SELECT a$$b FROM (SELECT 1 AS a$$b) s
