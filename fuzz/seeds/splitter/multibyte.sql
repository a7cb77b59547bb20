-- Ünïcödé everywhere: 日本語; ¿qué?
CREATE TABLE "таблица;" (имя text DEFAULT 'значение; 😀', "naïve;" int);
COMMENT ON TABLE "таблица;" IS $€$ €; $$ $€$;
SELECT имя FROM "таблица;" WHERE имя <> E'\u00e9;'
