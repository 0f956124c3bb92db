-- scripts/bench.sh: seeds :users bench users, each with a known session, straight into PostgreSQL
-- (no SMS codes, no logins). Run with psql -X -q -At -F ' ' -v users=N -v salt=S -v prefix=P.
--
-- * Mobiles are :prefix followed by 7 digits; bench.sh uses +99977 (country code 999 is not
--   assigned to anybody), so the rows can never clash with a real number and are easy to delete.
-- * pwd_hash is a fixed string that is not a valid yescrypt hash: nobody can log in as these users.
-- * A token is what a client sends (64 lower-case hex digits); the sessions table stores only
--   sha256(token), exactly as Sessions.swift computes it (SHA-256 of the token's UTF-8 text).
-- Prints one "token user_id" line per user.
\set ON_ERROR_STOP on

BEGIN;

INSERT INTO users (mobile, pwd_hash, name)
SELECT :'prefix' || lpad(i::text, 7, '0'), '$bench$not-a-password-hash', 'bench' || i
FROM generate_series(1, :users) AS i
ON CONFLICT (mobile) DO NOTHING;

CREATE TEMP TABLE bench_tokens ON COMMIT DROP AS
SELECT u.id AS user_id,
       encode(sha256(convert_to(:'salt' || ':' || u.id::text, 'UTF8')), 'hex') AS token
FROM users u
WHERE u.mobile IN (SELECT :'prefix' || lpad(i::text, 7, '0') FROM generate_series(1, :users) AS i);

-- Device 3 (PC): one session per user and device kind; a rerun replaces the previous bench token.
INSERT INTO sessions (token_hash, user_id, device)
SELECT sha256(convert_to(token, 'UTF8')), user_id, 3 FROM bench_tokens
ON CONFLICT (user_id, device) DO UPDATE
SET token_hash = EXCLUDED.token_hash, created_at = now(), last_used_at = now();

SELECT token, user_id FROM bench_tokens ORDER BY user_id;

COMMIT;
