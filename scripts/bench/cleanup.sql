-- scripts/bench.sh: removes the bench users (and, by ON DELETE CASCADE, their sessions) from a
-- stack that outlives the benchmark. Run with psql -v prefix=P (the prefix seed.sql used).
\set ON_ERROR_STOP on
DELETE FROM users WHERE mobile LIKE :'prefix' || '%' AND name LIKE 'bench%';
