-- scripts/bench.sh, messaging part: friendships for the sendMsg pairs and for the long-poll
-- receivers and their senders (users from users-seed.sql, same prefix). Both rows of each pair.
-- Run with psql -X -q -v prefix=P -v pair_lo=A -v pairs=N -v recv_lo=R -v send_lo=S -v clients=C:
--   sendMsg:   users pair_lo .. pair_lo + 2N - 1 form N pairs (pair_lo + 2i, pair_lo + 2i + 1);
--   long-poll: receiver recv_lo + i and sender send_lo + i are friends, i = 0 .. C - 1.
\set ON_ERROR_STOP on

BEGIN;

CREATE TEMP TABLE bn ON COMMIT DROP AS
SELECT substr(mobile, length(:'prefix') + 1)::int AS n, id
FROM users WHERE mobile LIKE :'prefix' || '%' AND name LIKE 'bench%';
CREATE UNIQUE INDEX ON bn (n);
ANALYZE bn;

CREATE TEMP TABLE pairs ON COMMIT DROP AS
SELECT a.id AS a, b.id AS b
FROM generate_series(0, :pairs - 1) AS i
JOIN bn a ON a.n = :pair_lo + 2 * i
JOIN bn b ON b.n = :pair_lo + 2 * i + 1
UNION ALL
SELECT r.id, s.id
FROM generate_series(0, :clients - 1) AS i
JOIN bn r ON r.n = :recv_lo + i
JOIN bn s ON s.n = :send_lo + i;

INSERT INTO friendships (user_id, friend_id)
SELECT a, b FROM pairs UNION ALL SELECT b, a FROM pairs
ON CONFLICT DO NOTHING;

SELECT 'friend_pairs ' || count(*) FROM pairs;

COMMIT;

VACUUM (ANALYZE) friendships;
