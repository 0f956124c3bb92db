-- scripts/bench.sh, moments part: 10 million posts and the people who read, write and praise them,
-- straight into PostgreSQL. The users come first from users-seed.sql (same prefix).
-- Run with psql -X -q -At -v prefix=P -v authors=A -v posts=N -v viewers=V -v friends=F
--   -v posters=Q -v poster_friends=G -v praisers=R (bench.sh passes 100000, 10000000, 20, 1000,
--   1000, 100, 500).
--
-- User numbers (the 7 digits after the prefix):
--   1 .. A                 the authors of the posts (N posts, spread evenly over them and over time)
--   100001 .. 100000+V     the readers of getFeed, each a friend of F authors (both rows)
--   100100                 the author of the hot post; 100101 .. 100100+R are their friends, the praisers
--   200001 .. 200000+Q     the addFeed posters, each a friend of G authors
-- Each reader's timeline holds every post of their friends, as addFeed would have written it.
-- Among the newest 200,000 posts, every 4th has 2 comments and 3 praises by other authors.
-- Ends with VACUUM (ANALYZE) of the tables it filled. Prints "name value" lines that bench.sh reads.
\set ON_ERROR_STOP on

BEGIN;

CREATE TEMP TABLE bn AS
SELECT substr(mobile, length(:'prefix') + 1)::int AS n, id
FROM users WHERE mobile LIKE :'prefix' || '%' AND name LIKE 'bench%';
CREATE UNIQUE INDEX ON bn (n);
ANALYZE bn;

-- Friendships, both rows of each pair. Reader v's friends are authors 1 + (v * 7919 + k * 97) mod A
-- for k < F: distinct for F <= 1,000 and A = 100,000, and different for each reader.
CREATE TEMP TABLE pairs AS
SELECT v.id AS a, au.id AS b
FROM bn v CROSS JOIN generate_series(0, :friends - 1) k
JOIN bn au ON au.n = 1 + ((v.n::bigint * 7919 + k * 97) % :authors)
WHERE v.n BETWEEN 100001 AND 100000 + :viewers
UNION
SELECT p.id, au.id
FROM bn p CROSS JOIN generate_series(0, :poster_friends - 1) k
JOIN bn au ON au.n = 1 + ((p.n::bigint * 104729 + k * 389) % :authors)
WHERE p.n BETWEEN 200001 AND 200000 + :posters
UNION
SELECT h.id, r.id FROM bn h JOIN bn r ON r.n BETWEEN 100101 AND 100100 + :praisers WHERE h.n = 100100;

INSERT INTO friendships (user_id, friend_id, created_at)
SELECT a, b, now() - interval '400 days' FROM pairs
UNION ALL
SELECT b, a, now() - interval '400 days' FROM pairs
ON CONFLICT DO NOTHING;

-- The posts, oldest first (ids grow with time, as they do when posted), one every 30 ms of the
-- last 3.5 days; post g is by author 1 + (g * 7) mod A. A third have one to three images.
INSERT INTO feeds (user_id, text, images, created_at)
SELECT au.id,
       '今天的动态 bench post ' || g || CASE WHEN g % 5 = 0 THEN '，去了公园散步，天气很好。' ELSE '' END,
       CASE WHEN g % 3 = 0 THEN ARRAY(SELECT '2024/01/' || lpad(to_hex(g * 4 + i), 24, '0') || '.jpg'
                                      FROM generate_series(1, 1 + g % 3 + (g / 3) % 3) i)
            ELSE '{}'::text[] END,
       now() - ((:posts - g) * interval '30 milliseconds')
FROM generate_series(1, :posts) g
JOIN bn au ON au.n = 1 + ((g * 7) % :authors)
ORDER BY g;

-- The hot post.
INSERT INTO feeds (user_id, text) SELECT id, 'the hot post' FROM bn WHERE n = 100100;

-- The readers' timelines: every post of their friends.
INSERT INTO feed_timeline (owner_id, feed_id, author_id)
SELECT fr.user_id, f.id, f.user_id
FROM bn v JOIN friendships fr ON fr.user_id = v.id JOIN feeds f ON f.user_id = fr.friend_id
WHERE v.n BETWEEN 100001 AND 100000 + :viewers;
-- The hot author's timeline holds the hot post.
INSERT INTO feed_timeline (owner_id, feed_id, author_id)
SELECT f.user_id, f.id, f.user_id FROM feeds f JOIN bn h ON h.id = f.user_id WHERE h.n = 100100;

-- Comments and praises on every 4th of the newest 200,000 posts, by other authors.
CREATE TEMP TABLE recent AS
SELECT id, user_id, row_number() OVER (ORDER BY id) AS r
FROM (SELECT id, user_id FROM feeds ORDER BY id DESC LIMIT 200000) x;
INSERT INTO feed_comments (feed_id, user_id, reply_id, text)
SELECT p.id, au.id, 0, '评论 ' || p.r || '-' || i
FROM recent p CROSS JOIN generate_series(1, 2) i
JOIN bn au ON au.n = 1 + ((p.r * 31 + i * 1013) % :authors)
WHERE p.r % 4 = 0;
INSERT INTO feed_praises (feed_id, user_id)
SELECT p.id, au.id
FROM recent p CROSS JOIN generate_series(1, 3) i
JOIN bn au ON au.n = 1 + ((p.r * 37 + i * 2027) % :authors)
WHERE p.r % 4 = 0
ON CONFLICT DO NOTHING;

COMMIT;

VACUUM (ANALYZE) friendships;
VACUUM (ANALYZE) feeds;
VACUUM (ANALYZE) feed_timeline;
VACUUM (ANALYZE) feed_comments;
VACUUM (ANALYZE) feed_praises;

SELECT 'hot_post', max(f.id) FROM feeds f JOIN users u ON u.id = f.user_id
WHERE u.mobile = :'prefix' || lpad('100100', 7, '0');
SELECT 'posts', count(*) FROM feeds;
SELECT 'timeline_rows', count(*) FROM feed_timeline;
