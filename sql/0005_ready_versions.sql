-- Versions for the rest of ready's lists, which the workers keep rendered like the lists of 0004
-- (same sequence, same rules: kept by triggers, a new version is always a fresh value, a missing
-- row reads as 0). One row per user and list in user_list_versions:
--
-- * list 1, requests: ready.requests, the pending requests addressed to the user (friend requests
--   to them, join requests to the groups they own), each with the requester's profile.
-- * list 2, groups: ready.groups, everything it shows: which groups the user is in, in what order,
--   their card in each, and of each group its name, owner, member count and first nine avatars.
--   A change to one group bumps the list of each of its members (at most 500 rows), so that
--   `ready` checks one number instead of one per group (a user in 50 groups: 50 index probes,
--   which cost more than the rest of its statement). What moves a group's lists: a rename, a new
--   owner, a new member count, its end (the groups trigger); a member joining or leaving
--   (group_members); an avatar among the first nine shown changing (users).
-- * list 3, settings: ready.blocks, ready.tops and ready.ignores (blocks and
--   conversation_settings; a pinned or muted group drops out of them when it is dissolved).
--
-- Bumps are taken in one order in every trigger (friend lists, member lists, then the lists here
-- by number), and within one call in ascending user order, so that two transactions bumping
-- overlapping sets do not deadlock on each other.

CREATE TABLE user_list_versions (
    user_id bigint NOT NULL,
    list    smallint NOT NULL CHECK (list IN (1, 2, 3)),
    version bigint NOT NULL,
    PRIMARY KEY (user_id, list)
);

-- NULLs (a group whose owner account was deleted) are skipped.
CREATE FUNCTION bump_user_lists(which smallint, users bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO user_list_versions (user_id, list, version)
    SELECT u, which, nextval('list_version_seq')
    FROM (SELECT DISTINCT u FROM unnest(users) AS t(u) WHERE u IS NOT NULL ORDER BY u) AS o
    ON CONFLICT (user_id, list) DO UPDATE SET version = EXCLUDED.version;
$$;

CREATE FUNCTION bump_request_lists(users bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT bump_user_lists(1::smallint, users);
$$;

CREATE FUNCTION bump_group_lists(users bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT bump_user_lists(2::smallint, users);
$$;

CREATE FUNCTION bump_setting_lists(users bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT bump_user_lists(3::smallint, users);
$$;

-- Every member's group list, for a change to the groups themselves.
CREATE FUNCTION bump_group_lists_of_members(groups bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT bump_group_lists(ARRAY(SELECT m.user_id FROM group_members m WHERE m.group_id = ANY(groups)));
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

-- groups: a rename, a new owner, a new member count or the end of the group changes what every
-- member's ready.groups shows; a new owner (or none, once dissolved) moves the group's join
-- requests from one list to another; the end of the group takes it out of the tops and ignores
-- of whoever pinned or muted it.
CREATE FUNCTION groups_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_group_lists_of_members(ARRAY[NEW.id]);
    IF OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.dissolved_at IS DISTINCT FROM NEW.dissolved_at THEN
        PERFORM bump_request_lists(ARRAY[OLD.owner_id, NEW.owner_id]);
    END IF;
    IF OLD.dissolved_at IS DISTINCT FROM NEW.dissolved_at THEN
        PERFORM bump_setting_lists(ARRAY(
            SELECT s.user_id FROM conversation_settings s WHERE s.dest_type = 2 AND s.dest_id = NEW.id));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER groups_bump_lists AFTER UPDATE ON groups FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
          OR OLD.member_count IS DISTINCT FROM NEW.member_count OR OLD.dissolved_at IS DISTINCT FROM NEW.dissolved_at)
    EXECUTE FUNCTION groups_bump_lists();

-- group_members: as in 0004 (the group's member list), and now the group lists too: a member
-- joining or leaving changes every member's (the count, maybe the avatars) and the leaver's own;
-- a new card changes only its owner's.
CREATE OR REPLACE FUNCTION group_members_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM new_rows));
        PERFORM bump_group_lists_of_members(ARRAY(SELECT group_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM old_rows));
        PERFORM bump_group_lists(ARRAY(
            SELECT user_id FROM old_rows
            UNION SELECT m.user_id FROM group_members m WHERE m.group_id IN (SELECT group_id FROM old_rows)));
    ELSE
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM new_rows UNION SELECT group_id FROM old_rows));
        PERFORM bump_group_lists(ARRAY(SELECT user_id FROM new_rows UNION SELECT user_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

-- users: as in 0004; now also the group lists of the groups that show this user's avatar among
-- their first nine (those with fewer than nine avatars of earlier members: whether the user's own
-- shows, before or after, depends on nothing else), and the request lists that show this user as
-- a pending requester.
CREATE OR REPLACE FUNCTION users_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_friend_lists(ARRAY(SELECT friend_id FROM friendships WHERE user_id = NEW.id));
    PERFORM bump_member_lists(ARRAY(SELECT group_id FROM group_members WHERE user_id = NEW.id));
    IF OLD.head_url IS DISTINCT FROM NEW.head_url THEN
        PERFORM bump_group_lists_of_members(ARRAY(
            SELECT m.group_id FROM group_members m
            WHERE m.user_id = NEW.id
              AND (SELECT count(*) FROM (
                      SELECT 1 FROM group_members o JOIN users ou ON ou.id = o.user_id
                      WHERE o.group_id = m.group_id AND o.member_seq < m.member_seq AND ou.head_url <> ''
                      LIMIT 9) AS earlier) < 9));
    END IF;
    PERFORM bump_request_lists(ARRAY(
        SELECT COALESCE(r.to_user_id, g.owner_id) FROM friend_requests r LEFT JOIN groups g ON g.id = r.group_id
        WHERE r.from_id = NEW.id AND r.status = 0));
    RETURN NULL;
END $$;

-- A user's groups with what ready needs of each membership (which group, since when) in the index
-- itself: ready walks them for the conversations past the read position, and an index-only scan
-- reads one or two index pages instead of a heap page per group. It replaces the plain index on
-- user_id, which it serves as well.
CREATE INDEX group_members_user_groups ON group_members (user_id) INCLUDE (group_id, joined_at);
DROP INDEX group_members_user;

-- blocks and conversation_settings: the user's own settings lists.
CREATE FUNCTION settings_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_setting_lists(ARRAY(SELECT user_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bump_setting_lists(ARRAY(SELECT user_id FROM old_rows));
    ELSE
        PERFORM bump_setting_lists(ARRAY(SELECT user_id FROM new_rows UNION SELECT user_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER blocks_bump_lists_insert AFTER INSERT ON blocks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION settings_bump_lists();
CREATE TRIGGER blocks_bump_lists_update AFTER UPDATE ON blocks
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION settings_bump_lists();
CREATE TRIGGER blocks_bump_lists_delete AFTER DELETE ON blocks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION settings_bump_lists();
CREATE TRIGGER conversation_settings_bump_lists_insert AFTER INSERT ON conversation_settings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION settings_bump_lists();
CREATE TRIGGER conversation_settings_bump_lists_update AFTER UPDATE ON conversation_settings
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION settings_bump_lists();
CREATE TRIGGER conversation_settings_bump_lists_delete AFTER DELETE ON conversation_settings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION settings_bump_lists();

-- Who pinned or muted a group, for the groups trigger when the group ends.
CREATE INDEX conversation_settings_group ON conversation_settings (dest_id) WHERE dest_type = 2;
