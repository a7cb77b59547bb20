-- migrations:bogus
SELECT 1;
