-- scripts/bench.sh, message history part: one direct conversation with most of :total messages,
-- and :others more direct conversations of :per_other messages each, so that the messages table
-- holds :total bench rows (on top of whatever it already had). Straight into PostgreSQL, a few
-- large INSERT … SELECT over generate_series.
-- Run with psql -X -q -At -v prefix=P -v main_a=A -v main_b=B -v others_lo=L -v others=N
--   -v per_other=K -v total=T
--   * the main conversation is between users main_a and main_b (user numbers after the prefix);
--   * the others are between users others_lo + 2i and others_lo + 2i + 1, i = 0 .. N - 1.
-- Messages: seq 1..n per conversation (last_seq = n), send_time in ms strictly increasing with
-- seq and ending an hour ago, both senders alternating, msg_id from a block of message_ids reserved
-- in one statement (so the app's later nextval calls never collide with them).
-- Ends with VACUUM ANALYZE of the messages partitions: sets the visibility map and statistics now
-- (otherwise autovacuum would do it in the middle of the measurements).
-- Prints "history <conversation id> <peer id> <first send_time> <last send_time> <count>".
\set ON_ERROR_STOP on

BEGIN;

CREATE TEMP TABLE bn ON COMMIT DROP AS
SELECT substr(mobile, length(:'prefix') + 1)::int AS n, id
FROM users WHERE mobile LIKE :'prefix' || '%' AND name LIKE 'bench%';
CREATE UNIQUE INDEX ON bn (n);
ANALYZE bn;

-- c = 0 is the main conversation.
CREATE TEMP TABLE hc ON COMMIT DROP AS
SELECT 0 AS c, nextval(pg_get_serial_sequence('conversations', 'id')) AS id,
       least(a.id, b.id) AS lo, greatest(a.id, b.id) AS hi,
       (:total - :others * :per_other)::bigint AS k
FROM bn a JOIN bn b ON b.n = :main_b WHERE a.n = :main_a
UNION ALL
SELECT 1 + i, nextval(pg_get_serial_sequence('conversations', 'id')),
       least(a.id, b.id), greatest(a.id, b.id), :per_other
FROM generate_series(0, :others - 1) AS i
JOIN bn a ON a.n = :others_lo + 2 * i
JOIN bn b ON b.n = :others_lo + 2 * i + 1;

ANALYZE hc;

INSERT INTO conversations (id, kind, user_low, user_high, last_seq)
SELECT id, 1, lo, hi, k FROM hc;

-- Message ids: one block of :total values, reserved at once.
CREATE TEMP TABLE ids ON COMMIT DROP AS
SELECT setval('message_ids', nextval('message_ids') + :total - 1) - :total + 1 AS base;

-- The main conversation: one message every 0.6 s, the last an hour ago.
INSERT INTO messages (conversation_id, seq, msg_id, from_id, msg_type, content, client_msg_id, send_time)
SELECT hc.id, s, ids.base + s - 1, CASE WHEN s % 2 = 0 THEN hc.lo ELSE hc.hi END, 1,
       'history message ' || s || ' 历史消息', 'h' || s,
       (extract(epoch FROM now()) * 1000)::bigint - 3600000 - (hc.k - s) * 600
FROM hc, ids, generate_series(1, hc.k) AS s
WHERE hc.c = 0;

-- The others: :per_other messages each, one a minute.
INSERT INTO messages (conversation_id, seq, msg_id, from_id, msg_type, content, client_msg_id, send_time)
SELECT hc.id, s, ids.base + m.k + (hc.c - 1) * :per_other + s - 1, CASE WHEN s % 2 = 0 THEN hc.lo ELSE hc.hi END, 1,
       'other message ' || s || ' 其他消息', 'h' || s,
       (extract(epoch FROM now()) * 1000)::bigint - 3600000 - (hc.k - s) * 60000
FROM hc, ids, (SELECT k FROM hc WHERE c = 0) AS m, generate_series(1, :per_other) AS s
WHERE hc.c > 0
ORDER BY hc.id, s;

SELECT 'history ' || hc.id || ' ' || b.id || ' '
       || (extract(epoch FROM now()) * 1000)::bigint - 3600000 - (hc.k - 1) * 600 || ' '
       || (extract(epoch FROM now()) * 1000)::bigint - 3600000 || ' ' || hc.k
FROM hc JOIN bn b ON b.n = :main_b
WHERE hc.c = 0;

COMMIT;

VACUUM (ANALYZE) messages;
ANALYZE conversations;
