-- A Profile (API.md §2) built by PostgreSQL, for the long lists (a user's friends, a group's
-- members): PostgreSQL writes the JSON text and the app passes it through, instead of decoding
-- every column and encoding it again. It must match Profile.json in
-- Sources/ChatFCGI/Features/Accounts/Profile.swift (an integration test compares the two).

-- +8613812345678 -> +86138****5678: as Profile.mask(mobile:).
CREATE FUNCTION chat_mask_mobile(mobile text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN left(mobile, 1) <> '+' THEN '****'
        WHEN length(mobile) - 1 >= 11
            THEN '+' || substr(mobile, 2, length(mobile) - 9) || '****' || right(mobile, 4)
        ELSE '+' || substr(mobile, 2, least(2, (length(mobile) - 1) / 3))
             || repeat('*', length(mobile) - 1 - 2 * least(2, (length(mobile) - 1) / 3))
             || right(mobile, least(2, (length(mobile) - 1) / 3))
    END
$$;

CREATE FUNCTION chat_profile_json(u users, reveal_mobile boolean) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'userId', u.id,
        'mobile', CASE WHEN reveal_mobile THEN u.mobile ELSE chat_mask_mobile(u.mobile) END,
        'name', u.name, 'nickName', u.nick_name, 'headUrl', u.head_url, 'sex', u.sex, 'sign', u.sign,
        'province', u.province, 'city', u.city, 'isAuth', u.auth_status)
$$;
