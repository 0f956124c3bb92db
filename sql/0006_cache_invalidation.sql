-- Notifications for the workers' caches of sessions, profiles and relations (see
-- Sources/ChatFCGI/Cache/ChangeStripes.swift and docs/caching.md).
--
-- A worker answers getUserById from memory when it holds the session, the profile and the
-- relation at their current change counters. A change made through the app bumps those counters
-- itself, in shared memory, before it answers; these triggers cover every other writer (psql, the
-- admin commands, cascades, an app server on another host, the expiry job): each changed row
-- sends NOTIFY chat_cache with one key, which every worker's listener turns into the same bump.
--
-- Keys: a letter and a decimal number.
--   s<number>         a session: the first 8 bytes of its token hash as a bigint (token replaced
--                     or deleted; Sessions.changeId in Features/Accounts/Sessions.swift)
--   p<user id>        a profile (a column of Profile changed, or the user was deleted)
--   r<user id>        a user's relations to others (their friendships, remarks or blocks)
-- PostgreSQL folds identical notifications of one transaction into one.

CREATE FUNCTION notify_cache_change(key text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('chat_cache', key);
$$;

CREATE FUNCTION sessions_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_cache_change('s' || ('x' || encode(substr(OLD.token_hash, 1, 8), 'hex'))::bit(64)::bigint);
    RETURN NULL;
END;
$$;

-- Not on last_used_at: the session-use writer updates that column every second.
CREATE TRIGGER sessions_notify_cache_update AFTER UPDATE OF token_hash, user_id ON sessions
    FOR EACH ROW WHEN (OLD.token_hash IS DISTINCT FROM NEW.token_hash OR OLD.user_id <> NEW.user_id)
    EXECUTE FUNCTION sessions_notify_cache();
CREATE TRIGGER sessions_notify_cache_delete AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_notify_cache();

CREATE FUNCTION users_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_cache_change('p' || OLD.id);
    RETURN NULL;
END;
$$;

-- Only the columns of Profile (Features/Accounts/Profile.swift) matter to the cache.
CREATE TRIGGER users_notify_cache_update AFTER UPDATE ON users
    FOR EACH ROW WHEN ((OLD.id, OLD.mobile, OLD.name, OLD.nick_name, OLD.head_url, OLD.sex, OLD.sign,
                        OLD.province, OLD.city, OLD.auth_status)
                       IS DISTINCT FROM
                       (NEW.id, NEW.mobile, NEW.name, NEW.nick_name, NEW.head_url, NEW.sex, NEW.sign,
                        NEW.province, NEW.city, NEW.auth_status))
    EXECUTE FUNCTION users_notify_cache();
CREATE TRIGGER users_notify_cache_delete AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_notify_cache();

-- friendships and blocks: the relations of the row's user_id (each side of a friendship is its
-- own row, so both sides are covered).
CREATE FUNCTION relations_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM notify_cache_change('r' || OLD.user_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM notify_cache_change('r' || NEW.user_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER friendships_notify_cache AFTER INSERT OR UPDATE OR DELETE ON friendships
    FOR EACH ROW EXECUTE FUNCTION relations_notify_cache();
CREATE TRIGGER blocks_notify_cache AFTER INSERT OR UPDATE OR DELETE ON blocks
    FOR EACH ROW EXECUTE FUNCTION relations_notify_cache();
