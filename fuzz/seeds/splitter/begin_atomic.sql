CREATE TABLE atomic_t (x int);
CREATE FUNCTION atomic_f(x int) RETURNS int
LANGUAGE sql
BEGIN ATOMIC
    SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
    SELECT CASE x WHEN 1 THEN CASE WHEN x > 0 THEN 1 END ELSE 2 END;
END;
CREATE OR REPLACE PROCEDURE atomic_p(x int)
LANGUAGE sql
begin atomic
    insert into atomic_t values (case when x > 0 then x end);
    update atomic_t set x = (case x when 1 then 2 end);
    delete from atomic_t where x = 3;
end;
create or replace function atomic_g() returns int return 1;
CREATE FUNCTION atomic_h() RETURNS int LANGUAGE sql BEGIN ATOMIC; END;
CALL atomic_p(1)
