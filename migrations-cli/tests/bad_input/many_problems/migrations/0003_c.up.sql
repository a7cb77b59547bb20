-- nothing
SELECT 'no end;
