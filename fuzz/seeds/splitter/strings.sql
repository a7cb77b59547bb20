SELECT 'it''s; fine', E'it\'s; fine', e'back\\slash;', 'C:\'; -- standard string ends at the quote
SELECT N'national;', B'1010', X'1F', U&'d\0061t\+000061;' UESCAPE '\';
SELECT "quoted;identifier", "with ""double"" quotes;" FROM (SELECT 1 AS "quoted;identifier", 2 AS "with ""double"" quotes;") t;
SELECT U&"d\0061t\+000061;" FROM (SELECT 1 AS data) t;
SELECT 'multi
line; string', 'concatenated;'
'continuation;';
SELECT 'a'||'b';SELECT'c'
