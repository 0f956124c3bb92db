-- scripts/bench.sh: removes the bench users and everything the benchmark seeded or created for
-- them from a stack that outlives the benchmark. Run with psql -v prefix=P (the prefix seed.sql or
-- users-seed.sql used); bench.sh runs it once per prefix.
--
-- Deletes in bulk, children first: messages have no foreign key (they are hash-partitioned), so
-- they must go explicitly; and deleting the rest explicitly spares the per-row foreign-key
-- cascades of tens of thousands of users and 100,000 groups (some referencing columns have only
-- partial indexes, e.g. groups.owner_id, and would be scanned once per deleted row).
\set ON_ERROR_STOP on

BEGIN;

CREATE TEMP TABLE bench_users AS
SELECT id FROM users WHERE mobile LIKE :'prefix' || '%' AND name LIKE 'bench%';
CREATE UNIQUE INDEX ON bench_users (id);
ANALYZE bench_users;

CREATE TEMP TABLE bench_groups ON COMMIT DROP AS
SELECT id FROM groups WHERE owner_id IN (SELECT id FROM bench_users);
CREATE UNIQUE INDEX ON bench_groups (id);
ANALYZE bench_groups;

CREATE TEMP TABLE bench_conversations ON COMMIT DROP AS
SELECT id FROM conversations WHERE kind = 1 AND user_low IN (SELECT id FROM bench_users)
UNION
SELECT id FROM conversations WHERE kind = 1 AND user_high IN (SELECT id FROM bench_users)
UNION
SELECT id FROM conversations WHERE kind = 2 AND group_id IN (SELECT id FROM bench_groups);
CREATE UNIQUE INDEX ON bench_conversations (id);
ANALYZE bench_conversations;

DELETE FROM messages WHERE conversation_id IN (SELECT id FROM bench_conversations);
DELETE FROM conversation_reads WHERE conversation_id IN (SELECT id FROM bench_conversations);
DELETE FROM conversations WHERE id IN (SELECT id FROM bench_conversations);
DELETE FROM friend_requests
WHERE from_id IN (SELECT id FROM bench_users) OR to_user_id IN (SELECT id FROM bench_users)
   OR group_id IN (SELECT id FROM bench_groups);
DELETE FROM group_name_grams WHERE group_id IN (SELECT id FROM bench_groups);
DELETE FROM group_members WHERE group_id IN (SELECT id FROM bench_groups);
DELETE FROM group_members WHERE user_id IN (SELECT id FROM bench_users);
DELETE FROM conversation_settings WHERE user_id IN (SELECT id FROM bench_users);
DELETE FROM groups WHERE id IN (SELECT id FROM bench_groups);
DELETE FROM user_events WHERE user_id IN (SELECT id FROM bench_users);
DELETE FROM friendships WHERE user_id IN (SELECT id FROM bench_users);
DELETE FROM friendships WHERE friend_id IN (SELECT id FROM bench_users);

COMMIT;

-- The users last, in a second transaction: their ON DELETE SET NULL on groups.owner_id (indexed
-- only for live groups) scans groups once per deleted user, which must not still hold the dead
-- rows of 100,000 deleted groups. The rest (sessions, cursors, blocks, …) by ON DELETE CASCADE.
VACUUM groups;
DELETE FROM users WHERE id IN (SELECT id FROM bench_users);
