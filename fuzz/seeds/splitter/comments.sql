/* A header comment; with a semicolon.
   /* and a nested one; */
   still inside; */
-- line comment ; with a semicolon
SELECT 1 /* ; */ + /* /* ; */ ; */ 2; -- trailing ; comment
SELECT 2 -- no semicolon yet ;
;
/**/ SELECT 3 /***/ ; /* ** / * */
SELECT 4 --;
-- a comment after the last statement; with a semicolon
/* and a block one ; */
