-- The user of a live session (NULL when there is none), so that hot read paths can authenticate
-- inside the statements that serve them: one round trip to the database instead of two.
CREATE FUNCTION chat_session_user(token_hash bytea) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT s.user_id FROM sessions s
    WHERE s.token_hash = chat_session_user.token_hash AND s.last_used_at > now() - interval '30 days'
$$;
