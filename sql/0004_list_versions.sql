-- Versions of the long lists that the workers keep rendered in memory (ListCache in the code):
-- a user's friend list (ready.friends) and a group's member list (getGroupMember, and the member
-- avatars of ready.groups). A request reads the version, which is one index lookup, and uses the
-- rendered copy when the version is the same; otherwise it reads the list again. Rendering a
-- 500-row list cost more than everything else such a request does.
--
-- The versions are kept by triggers, so that no code path (endpoint, admin command, bench seed,
-- a manual fix in psql) can change a list without changing its version. Every new version is a
-- fresh value of one sequence: a version number never comes back, not even for a list whose row
-- was removed and made again, so a rendered copy can never be mistaken for a newer list's.
-- A missing row reads as version 0 (the list never changed since this migration). No foreign keys:
-- deleting a user cascades to friendships, whose trigger then bumps that user's own list, and a
-- key to the row being deleted would fail it; a leftover version row of a deleted user is harmless.

CREATE SEQUENCE list_version_seq;

CREATE TABLE friend_list_versions (
    user_id bigint PRIMARY KEY,
    version bigint NOT NULL
);

CREATE TABLE member_list_versions (
    group_id bigint PRIMARY KEY,
    version  bigint NOT NULL
);

-- Rows are upserted in ascending key order, so two transactions bumping overlapping sets lock them
-- in the same order and cannot deadlock on each other.
CREATE FUNCTION bump_friend_lists(users bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO friend_list_versions (user_id, version)
    SELECT u, nextval('list_version_seq') FROM (SELECT DISTINCT u FROM unnest(users) AS t(u) ORDER BY u) AS o
    ON CONFLICT (user_id) DO UPDATE SET version = EXCLUDED.version;
$$;

CREATE FUNCTION bump_member_lists(groups bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO member_list_versions (group_id, version)
    SELECT g, nextval('list_version_seq') FROM (SELECT DISTINCT g FROM unnest(groups) AS t(g) ORDER BY g) AS o
    ON CONFLICT (group_id) DO UPDATE SET version = EXCLUDED.version;
$$;

-- friendships: a friend list is its owner's rows (who, remark, friend group, order).
-- Statement-level with transition tables: adding 500 rows at once bumps each list once.
CREATE FUNCTION friendships_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_friend_lists(ARRAY(SELECT user_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bump_friend_lists(ARRAY(SELECT user_id FROM old_rows));
    ELSE
        PERFORM bump_friend_lists(ARRAY(SELECT user_id FROM new_rows UNION SELECT user_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER friendships_bump_lists_insert AFTER INSERT ON friendships
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION friendships_bump_lists();
CREATE TRIGGER friendships_bump_lists_update AFTER UPDATE ON friendships
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION friendships_bump_lists();
CREATE TRIGGER friendships_bump_lists_delete AFTER DELETE ON friendships
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION friendships_bump_lists();

-- group_members: a member list is the group's rows (who, card, join time, order).
CREATE FUNCTION group_members_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM old_rows));
    ELSE
        PERFORM bump_member_lists(ARRAY(SELECT group_id FROM new_rows UNION SELECT group_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER group_members_bump_lists_insert AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION group_members_bump_lists();
CREATE TRIGGER group_members_bump_lists_update AFTER UPDATE ON group_members
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION group_members_bump_lists();
CREATE TRIGGER group_members_bump_lists_delete AFTER DELETE ON group_members
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION group_members_bump_lists();

-- users: both lists show profiles. A changed profile bumps the friend lists it appears in (its
-- friends' lists: friendship is mutual, so those are the user's own friends, found through the
-- primary key) and the member lists of its groups. Only the columns of the contract's Profile count.
CREATE FUNCTION users_bump_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_friend_lists(ARRAY(SELECT friend_id FROM friendships WHERE user_id = NEW.id));
    PERFORM bump_member_lists(ARRAY(SELECT group_id FROM group_members WHERE user_id = NEW.id));
    RETURN NULL;
END $$;

CREATE TRIGGER users_bump_lists AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.mobile IS DISTINCT FROM NEW.mobile OR OLD.name IS DISTINCT FROM NEW.name
          OR OLD.nick_name IS DISTINCT FROM NEW.nick_name OR OLD.head_url IS DISTINCT FROM NEW.head_url
          OR OLD.sex IS DISTINCT FROM NEW.sex OR OLD.sign IS DISTINCT FROM NEW.sign
          OR OLD.province IS DISTINCT FROM NEW.province OR OLD.city IS DISTINCT FROM NEW.city
          OR OLD.auth_status IS DISTINCT FROM NEW.auth_status)
    EXECUTE FUNCTION users_bump_lists();
