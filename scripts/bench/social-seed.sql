-- scripts/bench.sh, social graph part: the social graph of one heavy user and 100,000 searchable
-- groups, straight into PostgreSQL. The users come first from users-seed.sql (same prefix).
-- Run with psql -X -q -v prefix=P -v search_groups=G (bench.sh passes 100000).
--
-- User numbers (the 7 digits after the prefix):
--   1          R, the heavy user that /chat/ready is measured for
--   2..501     R's 500 friends (F), two friendships rows per pair
--   502..541   40 users with pending friend requests to R (and join requests to R's groups)
--   1001..2000 the owners and members of the searchable groups
--
-- R's 50 groups: group 1 has 500 members (R and 499 friends; R owns it): getGroupMember is measured
-- on it; groups 2..50 have 3 to 300 members, R owns every fifth, the others were created by a friend
-- and R joined later. Members join in order (member_seq is an identity column, assigned in the
-- order of the INSERT's ORDER BY), member_count is the real count.
-- The searchable groups: :search_groups live groups (owner and two more members each) plus 2,000
-- dissolved ones, named from small Chinese and Latin word lists, with group_name_grams written
-- exactly as GroupsFeature.grams(of:) computes them. R also has unread messages in 20 direct
-- conversations and 10 group conversations, pinned and muted conversations, and blocks.
-- Ends with VACUUM (ANALYZE) of the tables it filled. Prints "name value" lines that bench.sh reads.
\set ON_ERROR_STOP on

BEGIN;

CREATE TEMP TABLE bn AS
SELECT substr(mobile, length(:'prefix') + 1)::int AS n, id
FROM users WHERE mobile LIKE :'prefix' || '%' AND name LIKE 'bench%';
CREATE UNIQUE INDEX ON bn (n);
ANALYZE bn;

-- ---------------------------------------------------------------------------------------------
-- R's friends: 500 pairs, both rows; friends since various times, some with remarks.

INSERT INTO friendships (user_id, friend_id, remark, friend_group_id, created_at)
SELECT r.id, f.id, CASE WHEN f.n % 4 = 0 THEN '备注' || f.n ELSE '' END, f.n % 3,
       now() - (f.n || ' hours')::interval
FROM bn r JOIN bn f ON f.n BETWEEN 2 AND 501
WHERE r.n = 1
UNION ALL
SELECT f.id, r.id, '', 0, now() - (f.n || ' hours')::interval
FROM bn r JOIN bn f ON f.n BETWEEN 2 AND 501
WHERE r.n = 1;

-- ---------------------------------------------------------------------------------------------
-- R's 50 groups.

CREATE TEMP TABLE rg AS
SELECT g,
       nextval(pg_get_serial_sequence('groups', 'id')) AS id,
       CASE WHEN g = 1 THEN 500 ELSE 3 + (g * 7919) % 298 END AS size,
       (g = 1 OR g % 5 = 0) AS r_owns,
       (g * 37) % 500 AS off
FROM generate_series(1, 50) AS g;
ANALYZE rg;

-- Position p (0 = first to join, the creator): R is at position 0 in the groups it owns and in
-- the middle of the others; the rest are friends, picked consecutively from an offset.
CREATE TEMP TABLE rgm ON COMMIT DROP AS
WITH positions AS (
    SELECT rg.g, rg.id AS group_id, rg.size, p, CASE WHEN rg.r_owns THEN 0 ELSE rg.size / 2 END AS rpos, rg.off
    FROM rg, generate_series(0, rg.size - 1) AS p
)
SELECT g, group_id, p,
       CASE WHEN p = rpos THEN 1
            WHEN p < rpos THEN 2 + (off + p) % 500
            ELSE 2 + (off + p - 1) % 500 END AS member_n,
       size
FROM positions;
ANALYZE rgm;

INSERT INTO groups (id, name, owner_id, need_approval, member_count, created_at)
SELECT rg.id, '基准群' || rg.g || ' Bench Group ' || rg.g, o.id, rg.g % 2 = 0, 0,
       now() - ((100 - rg.g) || ' days')::interval
FROM rg JOIN rgm ON rgm.g = rg.g AND rgm.p = 0 JOIN bn o ON o.n = rgm.member_n
ORDER BY rg.g;

-- ---------------------------------------------------------------------------------------------
-- The searchable groups, named from word lists:
--   cities, topics and suffixes in Chinese, words in Latin letters, and numbers, so that searches
--   of 1, 2 and 3+ characters each match some groups but not all (bench.sh prints the counts).

CREATE TEMP TABLE words ON COMMIT DROP AS
SELECT '{北京,上海,广州,深圳,成都,杭州,武汉,西安,南京,重庆,天津,苏州,长沙,厦门,青岛,昆明}'::text[] AS city,
       '{摄影,读书,跑步,篮球,足球,美食,旅行,音乐,电影,游戏,编程,投资,宠物,烘焙,钓鱼,登山,骑行,瑜伽,书法,围棋}'::text[] AS topic,
       '{Tech,Coffee,Runners,Books,Music,Gamers,Photo,Travel,Crypto,Swift,Linux,Yoga,Foodies,Film,Club,Team}'::text[] AS latin,
       '{群,俱乐部,爱好者,交流群,同学会,小分队,之家,联盟}'::text[] AS suffix;

CREATE TEMP TABLE sg ON COMMIT DROP AS
WITH picks AS (
    SELECT k,
           1 + abs(hashint4(k * 4 + 1)) % 16 AS c, 1 + abs(hashint4(k * 4 + 2)) % 20 AS t,
           1 + abs(hashint4(k * 4 + 3)) % 16 AS l, 1 + abs(hashint4(k * 4 + 4)) % 8 AS s,
           1 + abs(hashint4(k * 7 + 5)) % 16 AS l2, abs(hashint4(k * 7 + 6)) % 100 AS num
    FROM generate_series(1, :search_groups + 2000) AS k
)
SELECT k, nextval(pg_get_serial_sequence('groups', 'id')) AS id,
       CASE k % 6
           WHEN 0 THEN city[c] || topic[t] || suffix[s]
           WHEN 1 THEN city[c] || ' ' || latin[l] || ' ' || suffix[s]
           WHEN 2 THEN topic[t] || latin[l] || suffix[s] || num
           WHEN 3 THEN latin[l] || ' ' || latin[l2] || ' ' || num
           WHEN 4 THEN city[c] || topic[t] || latin[l]
           ELSE topic[t] || suffix[s] || ' ' || num
       END AS name,
       -- owner and two more members from the pool 1001..2000
       1001 + (k * 13) % 1000 AS owner_n,
       k > :search_groups AS dissolved
FROM picks, words;
ANALYZE sg;

INSERT INTO groups (id, name, owner_id, need_approval, member_count, created_at, dissolved_at)
SELECT sg.id, sg.name, o.id, sg.k % 3 <> 0, CASE WHEN sg.dissolved THEN 0 ELSE 3 END,
       now() - ((sg.k % 1000) || ' hours')::interval,
       CASE WHEN sg.dissolved THEN now() - interval '1 hour' END
FROM sg JOIN bn o ON o.n = sg.owner_n
ORDER BY sg.id;

-- Members only now that every group exists: the first foreign-key check of group_members plans
-- its lookup of groups once for the whole session, and a plan made while groups held 50 rows
-- (a sequential scan) would then run for every one of the 300,000 rows that follow.
ANALYZE groups;

INSERT INTO group_members (group_id, user_id, card, joined_at)
SELECT rgm.group_id, u.id,
       CASE WHEN rgm.member_n = 1 AND rgm.g % 3 = 0 THEN '我的群名片' || rgm.g
            WHEN rgm.member_n % 7 = 0 THEN '群名片' || rgm.member_n ELSE '' END,
       now() - ((100 - rgm.g) || ' days')::interval + (rgm.p || ' minutes')::interval
FROM rgm JOIN bn u ON u.n = rgm.member_n
ORDER BY rgm.g, rgm.p;

CREATE TEMP TABLE sgm ON COMMIT DROP AS
SELECT sg.id AS group_id, sg.k, j, 1001 + (sg.owner_n - 1001 + j * 101) % 1000 AS member_n
FROM sg, generate_series(0, 2) AS j
WHERE NOT sg.dissolved;
ANALYZE sgm;

INSERT INTO group_members (group_id, user_id, joined_at)
SELECT sgm.group_id, u.id, now() - ((sgm.k % 1000) || ' hours')::interval + (sgm.j || ' minutes')::interval
FROM sgm JOIN bn u ON u.n = sgm.member_n
ORDER BY sgm.group_id, sgm.j;

-- ---------------------------------------------------------------------------------------------
-- group_name_grams for every live group seeded here, exactly as GroupsFeature.grams(of:): every
-- character of lower(name) that is not whitespace, and every two adjacent characters neither of
-- which is whitespace (distinct per group).

INSERT INTO group_name_grams (gram, group_id)
SELECT DISTINCT gram, group_id FROM (
    SELECT substr(lower(g.name), p, 1) AS gram, g.id AS group_id
    FROM groups g JOIN (SELECT id FROM rg UNION ALL SELECT id FROM sg WHERE NOT dissolved) s ON s.id = g.id,
         generate_series(1, char_length(g.name)) AS p
    WHERE substr(lower(g.name), p, 1) !~ '[[:space:]]'
    UNION ALL
    SELECT substr(lower(g.name), p, 2), g.id
    FROM groups g JOIN (SELECT id FROM rg UNION ALL SELECT id FROM sg WHERE NOT dissolved) s ON s.id = g.id,
         generate_series(1, char_length(g.name) - 1) AS p
    WHERE substr(lower(g.name), p, 2) !~ '[[:space:]]'
) AS pieces
ORDER BY gram, group_id;

-- member_count is the real count.
UPDATE groups g SET member_count = c.k
FROM (SELECT group_id, count(*) AS k FROM group_members WHERE group_id IN (SELECT id FROM rg) GROUP BY group_id) AS c
WHERE g.id = c.group_id;

-- ---------------------------------------------------------------------------------------------
-- Requests, settings, blocks.

-- Pending friend requests to R from 502..541, and older ones already settled (not pending).
INSERT INTO friend_requests (from_id, dest_type, to_user_id, message, status, created_at)
SELECT q.id, 1, r.id, '你好，我是' || q.n || '，想加你为好友', 0, now() - (q.n || ' minutes')::interval
FROM bn q JOIN bn r ON r.n = 1
WHERE q.n BETWEEN 502 AND 541;
INSERT INTO friend_requests (from_id, dest_type, to_user_id, message, status, created_at)
SELECT f.id, 1, r.id, 'old request', 1 + f.n % 2, now() - interval '200 days'
FROM bn f JOIN bn r ON r.n = 1
WHERE f.n BETWEEN 2 AND 101;
-- Pending join requests to groups R owns (502..521, not members).
INSERT INTO friend_requests (from_id, dest_type, group_id, message, status, created_at)
SELECT q.id, 2, rg.id, '申请加入', 0, now() - (q.n || ' minutes')::interval
FROM bn q JOIN rg ON rg.g = 5 * (1 + q.n % 10)
WHERE q.n BETWEEN 502 AND 521;

-- R pins 10 friends and 5 groups, mutes 20 friends and 10 groups.
INSERT INTO conversation_settings (user_id, dest_type, dest_id, pinned, pinned_at, muted)
SELECT r.id, 1, f.id, f.n <= 11, CASE WHEN f.n <= 11 THEN now() - (f.n || ' minutes')::interval END, f.n > 11
FROM bn r JOIN bn f ON f.n BETWEEN 2 AND 31
WHERE r.n = 1;
INSERT INTO conversation_settings (user_id, dest_type, dest_id, pinned, pinned_at, muted)
SELECT r.id, 2, rg.id, rg.g <= 5, CASE WHEN rg.g <= 5 THEN now() - (rg.g || ' hours')::interval END, rg.g > 5
FROM bn r, rg
WHERE r.n = 1 AND rg.g <= 15;

-- R blocks three of the requesters.
INSERT INTO blocks (user_id, blocked_id)
SELECT r.id, q.id FROM bn r JOIN bn q ON q.n BETWEEN 539 AND 541 WHERE r.n = 1;

-- ---------------------------------------------------------------------------------------------
-- Unread messages for R: 20 direct conversations with friends 2..21 (30 messages each, half of
-- them partly read) and R's groups 1..10 (30 messages each from other members, none read).

CREATE TEMP TABLE rc ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('conversations', 'id')) AS id, 1 AS kind,
       least(r.id, f.id) AS user_low, greatest(r.id, f.id) AS user_high, NULL::bigint AS group_id,
       r.id AS r_id, f.id AS other_id, f.n
FROM bn r JOIN bn f ON f.n BETWEEN 2 AND 21
WHERE r.n = 1
UNION ALL
SELECT nextval(pg_get_serial_sequence('conversations', 'id')), 2, NULL, NULL, rg.id, NULL, NULL, rg.g
FROM rg WHERE rg.g <= 10;
ANALYZE rc;

INSERT INTO conversations (id, kind, user_low, user_high, group_id, last_seq)
SELECT id, kind, user_low, user_high, group_id, 30 FROM rc;

INSERT INTO messages (conversation_id, seq, msg_id, from_id, msg_type, content, client_msg_id, send_time)
SELECT rc.id, s, nextval('message_ids'),
       CASE WHEN rc.kind = 1 THEN CASE WHEN s % 3 = 0 THEN rc.r_id ELSE rc.other_id END
            ELSE (SELECT u.id FROM bn u WHERE u.n = 2 + ((SELECT off FROM rg WHERE rg.id = rc.group_id) + s) % 500) END,
       1, '未读消息 ' || s || '：今天晚上一起吃饭吗？', 'seed-' || s,
       (extract(epoch FROM now()) * 1000)::bigint - (31 - s) * 60000
FROM rc, generate_series(1, 30) AS s
ORDER BY rc.id, s;

INSERT INTO conversation_reads (user_id, conversation_id, read_seq)
SELECT rc.r_id, rc.id, 10 FROM rc WHERE rc.kind = 1 AND rc.n % 2 = 0;

COMMIT;

-- VACUUM (ANALYZE): the statistics now, and the visibility map too, so that autovacuum has no
-- reason to start on these tables in the middle of the measurements.
VACUUM (ANALYZE) users;
VACUUM (ANALYZE) sessions;
VACUUM (ANALYZE) friendships;
VACUUM (ANALYZE) groups;
VACUUM (ANALYZE) group_members;
VACUUM (ANALYZE) group_name_grams;
VACUUM (ANALYZE) friend_requests;
VACUUM (ANALYZE) conversation_settings;
VACUUM (ANALYZE) blocks;
VACUUM (ANALYZE) conversations;
VACUUM (ANALYZE) conversation_reads;
VACUUM (ANALYZE) messages;

-- For bench.sh: R's id, the 500-member group's id, and the seeded group counts.
SELECT 'ready_user ' || id FROM bn WHERE n = 1;
SELECT 'big_group ' || g.id || ' ' || g.member_count || ' ' || (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)
FROM groups g WHERE g.id = (SELECT id FROM rg WHERE g = 1);
SELECT 'ready_groups ' || count(*) FROM group_members m JOIN groups g ON g.id = m.group_id
WHERE m.user_id = (SELECT id FROM bn WHERE n = 1) AND g.dissolved_at IS NULL;
SELECT 'ready_friends ' || count(*) FROM friendships WHERE user_id = (SELECT id FROM bn WHERE n = 1);
SELECT 'live_groups ' || count(*) FROM groups WHERE dissolved_at IS NULL;
SELECT 'grams ' || count(*) FROM group_name_grams;
