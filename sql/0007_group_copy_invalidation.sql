-- Notifications for the workers' copies of groups (getGroupMember from memory; see
-- Features/Groups/MemberLists.swift, GroupCopy, and docs/caching.md), as 0006 does for sessions,
-- profiles and relations. A copy holds a live group's owner and its member list.
--
-- Key: g<group id>.
--
-- The member list already has a version that every change of it moves, whoever makes the change
-- (0004 and 0005: members joining and leaving, cards, and the Profile columns of every member, for
-- each of the member's groups), so its row in member_list_versions is where the list's
-- notification is sent from. The owner and the end of the group are columns of groups.
-- A change made through the app is bumped by the worker that made it before it answers; these
-- triggers cover every other writer, and fire for the app's changes too (a second bump is
-- harmless). PostgreSQL folds identical notifications of one transaction into one.

CREATE FUNCTION member_list_versions_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM notify_cache_change('g' || OLD.group_id);
    ELSE
        PERFORM notify_cache_change('g' || NEW.group_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER member_list_versions_notify_cache AFTER INSERT OR UPDATE OR DELETE ON member_list_versions
    FOR EACH ROW EXECUTE FUNCTION member_list_versions_notify_cache();

CREATE FUNCTION groups_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_cache_change('g' || OLD.id);
    RETURN NULL;
END;
$$;

-- Not on renames, counts or the approval setting: a copy holds none of them.
CREATE TRIGGER groups_notify_cache_update AFTER UPDATE ON groups
    FOR EACH ROW WHEN ((OLD.id, OLD.owner_id, OLD.dissolved_at) IS DISTINCT FROM (NEW.id, NEW.owner_id, NEW.dissolved_at))
    EXECUTE FUNCTION groups_notify_cache();
CREATE TRIGGER groups_notify_cache_delete AFTER DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION groups_notify_cache();
