-- A `;` inside parentheses does not end a statement: rules with several actions.
CREATE TABLE rule_t (id int, "end" int, "begin" text);
CREATE TABLE rule_log (id int);
CREATE RULE rule_r AS ON INSERT TO rule_t DO ALSO (
    INSERT INTO rule_log VALUES (NEW.id);
    INSERT INTO rule_log VALUES (NEW.id + 1);
);
CREATE RULE rule_s AS ON DELETE TO rule_t DO INSTEAD (DELETE FROM rule_log; NOTIFY rule_t);
SELECT (SELECT count(*) FROM rule_log), ARRAY[(1), (2)]
