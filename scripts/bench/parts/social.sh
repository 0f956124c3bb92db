# shellcheck shell=bash disable=SC2154  # sourced by scripts/bench.sh, whose variables it uses
# order: 20
# Part "social" of scripts/bench.sh: the social graph at realistic sizes.
# Users 1-541 and 1001-2000 (seed_ext_users); the graph: scripts/bench/social-seed.sql.
#   /chat/ready of a user with 500 friends, 50 groups, pending requests, pinned and muted
#   conversations and unread messages; /chat/getGroupMember of a 500-member group, by its members;
#   /chat/queryGroup over BENCH_SEARCH_GROUPS live groups (with group_name_grams), rotating over 1-,
#   2- and 3+-character texts (scripts/bench/queries.txt). Every answer is read and must be 2xx
#   with "code":1, except for ready and getGroupMember, whose answers are 150-190 KB: their bodies
#   are checked in the warm-up only, the measured run counts statuses >= 400 (wrk.lua).
# Targets on a 2-core machine at 32 connections: ready p99 <= 25 ms, getGroupMember p99 <= 15 ms,
# queryGroup over 100,000 live groups p99 <= 15 ms.

seed_ext_users "1-541,1001-2000"
log "seeding the social graph: one user with 500 friends and 50 groups, $BENCH_SEARCH_GROUPS searchable groups"
started=$SECONDS
social="$(psql_chat -At -v prefix="$EXT_PREFIX" -v search_groups="$BENCH_SEARCH_GROUPS" -f "$BENCH_DIR/social-seed.sql")"
SOCIAL_SEED_SECONDS=$((SECONDS - started))
seeding_took "social graph" "$SOCIAL_SEED_SECONDS"
read -r BIG_GROUP BIG_COUNT BIG_REAL <<<"$(kv big_group "$social")"
[ "$(kv ready_friends "$social")" = "500" ] || die "the ready user has $(kv ready_friends "$social") friends, not 500"
[ "$(kv ready_groups "$social")" = "50" ] || die "the ready user is in $(kv ready_groups "$social") groups, not 50"
if [ "$BIG_COUNT" != "500" ] || [ "$BIG_REAL" != "500" ]; then
    die "the big group has member_count $BIG_COUNT and $BIG_REAL members, not 500"
fi
LIVE_GROUPS="$(kv live_groups "$social")"
log "seeded in $SOCIAL_SEED_SECONDS s: $LIVE_GROUPS live groups in the database, $(kv grams "$social") group_name_grams rows"
# social-seed.sql vacuums the tables it fills (the users and sessions too); the version tables are
# filled by their triggers.
settle friend_list_versions member_list_versions user_list_versions

ext_creds 1 1 >"$WORK/ready.txt"
# getGroupMember rotates over the big group's 500 members (the owner, the ready user, first);
# queryGroup over the 500 friends.
psql_chat -At -c "SELECT user_id FROM group_members WHERE group_id = $BIG_GROUP" >"$WORK/big-members.txt"
awk 'FILENAME == ARGV[1] { member[$1] = 1; next } ($2 in member)' "$WORK/big-members.txt" <(ext_creds 1 501) >"$WORK/members.txt"
[ "$(wc -l <"$WORK/members.txt")" -eq 500 ] || die "found $(wc -l <"$WORK/members.txt") sessions of the big group's members, not 500"
ext_creds 2 501 >"$WORK/friends.txt"

# How many live groups each query text matches: some, never all.
values="$(grep -v '^$' "$BENCH_DIR/queries.txt" | sed "s/'/''/g; s/.*/('&')/" | paste -sd, -)"
matches="$(psql_chat -At -F '|' -c "
    SELECT q, char_length(q),
           (SELECT count(*) FROM groups g WHERE g.dissolved_at IS NULL AND lower(g.name) LIKE '%' || lower(q) || '%')
    FROM (VALUES $values) AS t(q)")"
while IFS='|' read -r q _ count; do
    if [ "$count" -eq 0 ] || [ "$count" -ge "$LIVE_GROUPS" ]; then
        log "warning: the query text '$q' matches $count of $LIVE_GROUPS live groups"
    fi
done <<<"$matches"

# Answers of 185 KB (ready) and 158 KB (getGroupMember): bodies checked in the warm-up.
scenario ready500 label="/chat/ready (500 friends, 50 groups)" path=/chat/ready creds="$WORK/ready.txt" \
    bodies=warm-up expect="\"groupId\":$BIG_GROUP" target="p99 <= 25 ms"
scenario members500 label="/chat/getGroupMember (500 members)" path="/chat/getGroupMember?groupId=$BIG_GROUP" \
    creds="$WORK/members.txt" bodies=warm-up expect='"role":"owner"' target="p99 <= 15 ms"
scenario querygroup label="/chat/queryGroup ($((BENCH_SEARCH_GROUPS / 1000))k groups)" path="/chat/queryGroup?groupName={q}" \
    creds="$WORK/friends.txt" values="$BENCH_DIR/queries.txt" expect='"groupId"' target="p99 <= 15 ms"
run_scenario ready500 members500 querygroup

echo
echo "Social graph through nginx: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, ${BENCH_DURATION} s each after ${BENCH_WARMUP} s warm-up;"
echo "$(nproc) CPUs; app: $workers_count workers x ${threads:-8} threads. ready: one user with 500 friends, 50 groups (3 to 500"
echo "members), 60 pending requests, 45 pinned/muted conversations, 30 unread conversations; getGroupMember: a"
echo "500-member group, by its members; queryGroup: $BENCH_SEARCH_GROUPS seeded live groups ($LIVE_GROUPS live in all),"
echo "$(grep -c . "$BENCH_DIR/queries.txt") texts in rotation. Seeded in $SOCIAL_SEED_SECONDS s. ok/s: answers with \"code\":1; errors: socket"
echo "errors, non-2xx and other bodies, in the warm-up and the measured run; load: 1-minute load average when the"
echo "measured run started. ready and getGroupMember: every body of the warm-up checked (${R[ready500.checked]} and"
echo "${R[members500.checked]} answers), the measured run's statuses only, so that wrk does not copy 150-190 KB per answer"
echo "into Lua on the two cores the server uses (scripts/bench/wrk.lua)."
echo
scenario_table ready500 members500 querygroup
echo
echo "queryGroup texts (characters: live groups containing them):"
for class in 1 2 3; do
    line="$(awk -F'|' -v c="$class" '(c < 3 && $2 == c) || (c == 3 && $2 >= 3) { printf "%s%s (%s)", sep, $1, $3; sep = ", " }' <<<"$matches")"
    case "$class" in 1) label="1 character " ;; 2) label="2 characters" ;; *) label="3 and more  " ;; esac
    echo "  $label: $line"
done
