-- scripts/bench.sh (social and messaging parts): seeds the users those parts need, each with a
-- known session, straight into PostgreSQL, like seed.sql does for the basic part.
-- Run with psql -X -q -At -F ' ' -v prefix=P -v salt=S -v ranges=R, where R lists the user
-- numbers to seed as "lo-hi,lo-hi,…" (bench.sh gives each role its own range, see there).
--
-- * Mobiles are :prefix followed by the user's number in 7 digits; bench.sh uses +99978 for these
--   parts (country code 999 is not assigned to anybody), the basic part +99977.
-- * Every user gets an avatar (head_url), a signature and a place, so that profiles in ready,
--   getGroupMember and friend lists have the size of real ones.
-- * pwd_hash is not a valid yescrypt hash: nobody can log in as these users.
-- * Tokens are sha256(salt ':' user id) in hex; sessions store sha256(token), as Sessions.swift.
-- Prints one "number token user_id" line per user, by number.
\set ON_ERROR_STOP on

BEGIN;

CREATE TEMP TABLE bench_numbers ON COMMIT DROP AS
SELECT DISTINCT generate_series(split_part(r, '-', 1)::int, split_part(r, '-', 2)::int) AS n
FROM unnest(string_to_array(:'ranges', ',')) AS r;

INSERT INTO users (mobile, pwd_hash, name, nick_name, head_url, sign, province, city, need_auth)
SELECT :'prefix' || lpad(n::text, 7, '0'), '$bench$not-a-password-hash', 'bench' || n, '用户' || n,
       '/uploads/2024/01/bench-head-' || n || '.jpg',
       '这是一个基准测试用户的签名 ' || n, '广东', '深圳', false
FROM bench_numbers ORDER BY n
ON CONFLICT (mobile) DO NOTHING;

CREATE TEMP TABLE bench_tokens ON COMMIT DROP AS
SELECT b.n, u.id AS user_id,
       encode(sha256(convert_to(:'salt' || ':' || u.id::text, 'UTF8')), 'hex') AS token
FROM bench_numbers b JOIN users u ON u.mobile = :'prefix' || lpad(b.n::text, 7, '0');

-- Device 3 (PC): one session per user and device kind; a rerun replaces the previous bench token.
INSERT INTO sessions (token_hash, user_id, device)
SELECT sha256(convert_to(token, 'UTF8')), user_id, 3 FROM bench_tokens
ON CONFLICT (user_id, device) DO UPDATE
SET token_hash = EXCLUDED.token_hash, created_at = now(), last_used_at = now();

SELECT n, token, user_id FROM bench_tokens ORDER BY n;

COMMIT;
