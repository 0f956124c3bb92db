-- Versions for the rest of ready's long parts, which the workers keep rendered like the lists of
-- 0004 (same sequence, same rules: kept by triggers, a new version is always a fresh value, a
-- missing row reads as 0):
--
-- * request_list_versions: ready.requests, the pending requests addressed to a user (friend
--   requests to them, join requests to the groups they own), each with the requester's profile.
-- * group_list_versions: which groups a user is in, in what order, and their card in each (the
--   user's own group_members rows).
--
-- ready.groups also shows each group's name, owner, member count and first avatars. Those are
-- covered by the group's member_list_versions row, which from here on also moves when the
-- group's own row changes in a way ready shows: ready keys its copy on the user's
-- group_list_versions and the highest member_list_versions of the user's groups (versions come
-- from one sequence, so any change in any of the groups raises that maximum).

CREATE TABLE request_list_versions (
    user_id bigint PRIMARY KEY,
    version bigint NOT NULL
);

CREATE TABLE group_list_versions (
    user_id bigint PRIMARY KEY,
    version bigint NOT NULL
);

-- Ascending key order, as in 0004, so overlapping bumps cannot deadlock; NULLs (a group whose
-- owner account was deleted) are skipped.
CREATE FUNCTION bump_request_lists(users bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO request_list_versions (user_id, version)
    SELECT u, nextval('list_version_seq')
    FROM (SELECT DISTINCT u FROM unnest(users) AS t(u) WHERE u IS NOT NULL ORDER BY u) AS o
    ON CONFLICT (user_id) DO UPDATE SET version = EXCLUDED.version;
$$;

CREATE FUNCTION bump_group_lists(users bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO group_list_versions (user_id, version)
    SELECT u, nextval('list_version_seq')
    FROM (SELECT DISTINCT u FROM unnest(users) AS t(u) WHERE u IS NOT NULL ORDER BY u) AS o
    ON CONFLICT (user_id) DO UPDATE SET version = EXCLUDED.version;
$$;

-- friend_requests: a request shows in its addressee's list: the user it is addressed to, or the
-- current owner of the group it asks to join. Every change (new, accepted, withdrawn, deleted by
-- a cascade) bumps it.
CREATE FUNCTION friend_requests_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM bump_request_lists(ARRAY(
            SELECT COALESCE(r.to_user_id, g.owner_id) FROM new_rows r LEFT JOIN groups g ON g.id = r.group_id));
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM bump_request_lists(ARRAY(
            SELECT COALESCE(r.to_user_id, g.owner_id) FROM old_rows r LEFT JOIN groups g ON g.id = r.group_id));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER friend_requests_bump_lists_insert AFTER INSERT ON friend_requests
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION friend_requests_bump_lists();
CREATE TRIGGER friend_requests_bump_lists_update AFTER UPDATE ON friend_requests
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION friend_requests_bump_lists();
CREATE TRIGGER friend_requests_bump_lists_delete AFTER DELETE ON friend_requests
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION friend_requests_bump_lists();

-- groups: a new owner (or none, once dissolved) moves the group's join requests from one list to
-- another; a rename, a new owner, a new member count or the end of the group changes what every
-- member's ready.groups shows.
CREATE FUNCTION groups_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Member lists before request lists, the order the users trigger takes them in.
    PERFORM bump_member_lists(ARRAY[NEW.id]);
    IF OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.dissolved_at IS DISTINCT FROM NEW.dissolved_at THEN
        PERFORM bump_request_lists(ARRAY[OLD.owner_id, NEW.owner_id]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER groups_bump_lists AFTER UPDATE ON groups FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
          OR OLD.member_count IS DISTINCT FROM NEW.member_count OR OLD.dissolved_at IS DISTINCT FROM NEW.dissolved_at)
    EXECUTE FUNCTION groups_bump_lists();

-- group_members: as in 0004 (the group's member list), and now also each member's own list of
-- groups.
CREATE OR REPLACE FUNCTION group_members_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM new_rows));
        PERFORM bump_group_lists(ARRAY(SELECT user_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM old_rows));
        PERFORM bump_group_lists(ARRAY(SELECT user_id FROM old_rows));
    ELSE
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM new_rows UNION SELECT group_id FROM old_rows));
        PERFORM bump_group_lists(ARRAY(SELECT user_id FROM new_rows UNION SELECT user_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

-- users: as in 0004, and now also the request lists that show this user as a pending requester.
CREATE OR REPLACE FUNCTION users_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_friend_lists(ARRAY(SELECT friend_id FROM friendships WHERE user_id = NEW.id));
    PERFORM bump_member_lists(ARRAY(SELECT group_id FROM group_members WHERE user_id = NEW.id));
    PERFORM bump_request_lists(ARRAY(
        SELECT COALESCE(r.to_user_id, g.owner_id) FROM friend_requests r LEFT JOIN groups g ON g.id = r.group_id
        WHERE r.from_id = NEW.id AND r.status = 0));
    RETURN NULL;
END $$;

-- A user's groups with what ready needs of each membership (which group, since when) in the index
-- itself: ready walks them twice (the groups' highest version, the conversations past the read
-- position) and an index-only scan reads one or two index pages instead of a heap page per group.
-- It replaces the plain index on user_id, which it serves as well.
CREATE INDEX group_members_user_groups ON group_members (user_id) INCLUDE (group_id, joined_at);
DROP INDEX group_members_user;
