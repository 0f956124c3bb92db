# shellcheck shell=bash disable=SC2154  # sourced by scripts/bench.sh, whose variables it uses
# order: 30
# Part "messaging" of scripts/bench.sh: sending, long-poll delivery and history at realistic sizes.
# Users (seed_ext_users): sendMsg pairs 3001-5000, history 6001-8002, long-poll receivers 10001-…
# and their senders 20001-…; friendships: scripts/bench/messaging-seed.sql; the history:
# scripts/bench/history-seed.sql; the long-poll client: scripts/bench/longpoll.py.
#   1. /chat/sendMsg 1:1 throughput (POST, rotating over 1,000 friend pairs and both directions,
#      a unique clientMsgId per request);
#   2. long-poll delivery: BENCH_SYNC_CLIENTS clients parked in /chat/sync, then BENCH_SYNC_RATE
#      messages/s for BENCH_SYNC_SECONDS s from their friends over BENCH_SYNC_SENDERS connections:
#      delivery latency, and the workers' threads and RSS while parked and while sending
#      (scripts/bench/longpoll.py, Python 3 standard library; not a wrk scenario);
#   3. /chat/getMsgHistory (size 20, random sendTime) in a conversation of a 5-million-row
#      messages table (BENCH_HISTORY_MESSAGES bench rows, seeded with generate_series).
# Targets on a 2-core machine at 32 connections: sendMsg >= 3,000 messages/s; getMsgHistory over 5
# million messages p99 <= 10 ms; long-poll at 1,000 messages/s to 2,000 parked syncs: all parked
# and delivered once each, delivery p99 <= 100 ms, the workers' threads unchanged by parking and
# their RSS (sum) < 200 MiB while parked.
TARGET_DELIVERY_P99=100      # ms, long-poll delivery at 1,000 messages/s
TARGET_SYNC_RSS_MIB=200      # MiB, the workers' RSS (sum) with 2,000 parked syncs

seed_ext_users "3001-5000,6001-8002,10001-$((10000 + BENCH_SYNC_CLIENTS)),20001-$((20000 + BENCH_SYNC_CLIENTS))"
log "seeding friendships: 1000 sendMsg pairs, $BENCH_SYNC_CLIENTS long-poll receivers and their senders"
psql_chat -At -v prefix="$EXT_PREFIX" -v pair_lo=3001 -v pairs=1000 -v recv_lo=10001 -v send_lo=20001 \
    -v clients="$BENCH_SYNC_CLIENTS" -f "$BENCH_DIR/messaging-seed.sql" >/dev/null
# messaging-seed.sql vacuums friendships; the users and sessions were just seeded.
settle users sessions

# 1. sendMsg: 1,000 friend pairs (users 3001-5000), both directions.
ext_creds 3001 5000 >"$WORK/pairs.txt"
scenario sendmsg label="/chat/sendMsg 1:1" method=POST path=/chat/sendMsg lua=sendmsg creds="$WORK/pairs.txt" \
    check_data="destId={id}&destType=1&msgType=1&content=check&clientMsgId=check-$RUN_ID" expect='"msgId"' \
    target="ok/s >= 3000 messages/s"
run_scenario sendmsg

# 2. Long-poll delivery. nginx holds a client and an upstream connection per parked sync.
# The sendMsg run just wrote tens of thousands of messages and events: vacuum them now.
settle user_events user_event_cursors conversations messages
ngx_wc="$(awk '$1 == "worker_connections" { gsub(/;/, "", $2); print $2; exit }' "$STACK_DIR/nginx/nginx.conf" 2>/dev/null || true)"
needed=$(( 2 * (BENCH_SYNC_CLIENTS + BENCH_SYNC_SENDERS) + 100 ))
if [ -n "$ngx_wc" ] && [ "$ngx_wc" -lt "$needed" ]; then
    log "warning: nginx allows $ngx_wc connections per worker; up to $needed may land on one worker"
fi
# Each receiver's cursor starts at its user_event_cursors.last_cursor (0 if none).
psql_chat -At -F ' ' -c "
    SELECT c.user_id, c.last_cursor FROM user_event_cursors c JOIN users u ON u.id = c.user_id
    WHERE u.mobile LIKE '$EXT_PREFIX%'" >"$WORK/cursors.txt"
paste -d ' ' <(ext_creds 10001 $((10000 + BENCH_SYNC_CLIENTS))) <(ext_creds 20001 $((20000 + BENCH_SYNC_CLIENTS))) \
    | awk 'FILENAME == ARGV[1] { cursor[$1] = $2; next } { print $1, $2, ($2 in cursor ? cursor[$2] : 0), $3, $4 }' \
        "$WORK/cursors.txt" - >"$WORK/sync-clients.txt"
[ "$(wc -l <"$WORK/sync-clients.txt")" -eq "$BENCH_SYNC_CLIENTS" ] || die "could not pair the long-poll receivers with their senders"
log "long-poll: parking $BENCH_SYNC_CLIENTS clients in /chat/sync, then $BENCH_SYNC_RATE messages/s for $BENCH_SYNC_SECONDS s"
LP_LOAD="$(load1)"
timeout 180 python3 "$BENCH_DIR/longpoll.py" --port "$HTTP_PORT" --clients-file "$WORK/sync-clients.txt" \
    --supervisor-pid "$(supervisor_pid)" --rate "$BENCH_SYNC_RATE" --duration "$BENCH_SYNC_SECONDS" \
    --senders "$BENCH_SYNC_SENDERS" --run-id "$RUN_ID" >"$WORK/longpoll.txt" &
LONGPOLL_PID=$!
wait "$LONGPOLL_PID" || die "longpoll.py failed (status $?)"
LONGPOLL_PID=""
lp="$(grep '^LONGPOLL ' "$WORK/longpoll.txt")" || die "no summary from longpoll.py"
declare -A LP
for key in parked held_fds sent send_errors delivered duplicates p50_ms p99_ms max_ms rate threads_before threads_parked \
           threads_sending rss_before_kib rss_parked_kib rss_sending_kib sync_errors loop_lag_max_ms client_cpu_s \
           p99_per_second_ms; do
    LP[$key]="$(field "$key" "$lp")"
done
r_delivered="MISSED"
if [ "${LP[delivered]}" = "${LP[sent]}" ] && [ "${LP[duplicates]}" = "0" ] && [ "${LP[send_errors]}" = "0" ] \
    && [ "${LP[sent]}" -gt 0 ]; then
    r_delivered="ok"
fi
r_rate="$(verdict "${LP[rate]}" ge "$(awk -v r="$BENCH_SYNC_RATE" 'BEGIN { print r * 0.95 }')")"
r_latency="$(verdict "${LP[p99_ms]}" le "$TARGET_DELIVERY_P99")"
r_threads="MISSED"
if [ "${LP[threads_before]}" = "${LP[threads_parked]}" ] && [ "${LP[threads_parked]}" = "${LP[threads_sending]}" ]; then
    r_threads="ok"
fi
rss_parked_mib="$(mib "${LP[rss_parked_kib]}")"
r_rss="$(verdict "$rss_parked_mib" le "$TARGET_SYNC_RSS_MIB")"
r_parked="$(verdict "${LP[parked]}" ge "$BENCH_SYNC_CLIENTS")"

# 3. History: BENCH_HISTORY_MESSAGES rows, most in one conversation (users 6001 and 6002).
per_other=$(( BENCH_HISTORY_MESSAGES / 5 / 1000 ))
[ "$per_other" -le 1000 ] || per_other=1000
log "seeding $BENCH_HISTORY_MESSAGES messages: one conversation of $((BENCH_HISTORY_MESSAGES - 1000 * per_other)), 1000 of $per_other"
started=$SECONDS
history="$(psql_chat -At -v prefix="$EXT_PREFIX" -v main_a=6001 -v main_b=6002 -v others_lo=6003 -v others=1000 \
    -v per_other="$per_other" -v total="$BENCH_HISTORY_MESSAGES" -f "$BENCH_DIR/history-seed.sql")"
HISTORY_SEED_SECONDS=$((SECONDS - started))
seeding_took "message history" "$HISTORY_SEED_SECONDS"
read -r H_CONVERSATION H_PEER H_TMIN H_TMAX H_COUNT <<<"$(kv history "$history")"
[ -n "${H_COUNT:-}" ] || die "history-seed.sql printed no summary: $history"
MESSAGES_TOTAL="$(psql_chat -At -c "SELECT count(*) FROM messages")"
log "seeded in $HISTORY_SEED_SECONDS s (conversation $H_CONVERSATION: $H_COUNT messages; $MESSAGES_TOTAL in the table)"
settle
ext_creds 6001 6001 >"$WORK/history.txt"
scenario history label="/chat/getMsgHistory (size 20, $(awk -v n="$MESSAGES_TOTAL" 'BEGIN { printf "%.1fM", n / 1e6 }') rows)" \
    path="/chat/getMsgHistory?destId=$H_PEER&destType=1&sendTime={time}&size=20" time="$H_TMIN-$H_TMAX" \
    creds="$WORK/history.txt" expect='"msgId"' target="p99 <= 10 ms"
run_scenario history

echo
echo "Messaging through nginx: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, ${BENCH_DURATION} s each after ${BENCH_WARMUP} s warm-up;"
echo "$(nproc) CPUs; app: $workers_count workers x ${threads:-8} threads. sendMsg: POST, 1,000 friend pairs, both directions,"
echo "a new clientMsgId each (ok/s: messages/s); getMsgHistory: random sendTime in a conversation of $H_COUNT messages,"
echo "$MESSAGES_TOTAL rows in the messages table (seeded in $HISTORY_SEED_SECONDS s). Every answer read: errors are socket errors,"
echo "non-2xx and other bodies, in the warm-up and the measured run."
echo
scenario_table sendmsg history
echo
echo "Long-poll delivery (scripts/bench/longpoll.py): $BENCH_SYNC_CLIENTS clients parked in /chat/sync?timeout=30, then"
echo "$BENCH_SYNC_RATE messages/s for $BENCH_SYNC_SECONDS s over $BENCH_SYNC_SENDERS sender connections, each from a friend of one of the"
echo "parked receivers (round robin); latency = the receiver's sync answer carrying it - the sendMsg request's start."
echo "Load average (1 min) at the start: $LP_LOAD."
echo
lp_line() { printf '  %-44s %-34s %-22s %s\n' "$@"; }
lp_line "measure" "value" "target" "result"
lp_line "--------------------------------------------" "----------------------------------" "----------------------" "------"
lp_line "clients parked (held by the workers)" "${LP[parked]} of $BENCH_SYNC_CLIENTS (+${LP[held_fds]} worker fds)" "all" "$r_parked"
lp_line "messages delivered / sent" "${LP[delivered]} / ${LP[sent]} (${LP[duplicates]} repeated)" "all, once" "$r_delivered"
lp_line "send rate achieved" "$(printf '%.0f' "${LP[rate]}") messages/s (${LP[send_errors]} failed)" "$BENCH_SYNC_RATE messages/s" "$r_rate"
lp_line "delivery latency p50 / p99 / max" "${LP[p50_ms]} / ${LP[p99_ms]} / ${LP[max_ms]} ms" "p99 <= $TARGET_DELIVERY_P99 ms" "$r_latency"
lp_line "worker threads: before / parked / sending" "${LP[threads_before]} / ${LP[threads_parked]} / ${LP[threads_sending]}" "unchanged" "$r_threads"
lp_line "workers' RSS: before / parked / sending" \
    "$(mib "${LP[rss_before_kib]}") / $rss_parked_mib / $(mib "${LP[rss_sending_kib]}") MiB" "< $TARGET_SYNC_RSS_MIB MiB parked" "$r_rss"
lp_line "sync errors; client event-loop lag (max)" "${LP[sync_errors]}; ${LP[loop_lag_max_ms]} ms" "" ""
lp_line "client CPU (longpoll.py)" "${LP[client_cpu_s]} s" "" ""
echo "  delivery p99 per second of sending (ms): ${LP[p99_per_second_ms]//,/, }"

# The long-poll figures in the summary and the results file (raw: the send rate as ok/s, the
# delivery latency as p50 and p99, the failed sends as errors).
report longpoll-parked "long-poll: $BENCH_SYNC_CLIENTS clients parked" "all" "${LP[parked]}" "$r_parked" \
    - - - - "${LP[sync_errors]}" "$LP_LOAD"
report longpoll-threads "long-poll: worker threads unchanged" "unchanged" \
    "${LP[threads_before]} -> ${LP[threads_parked]} -> ${LP[threads_sending]}" "$r_threads" - - - - - "$LP_LOAD"
report longpoll-rss "long-poll: workers' RSS while parked" "< $TARGET_SYNC_RSS_MIB MiB" "$rss_parked_mib MiB" "$r_rss" \
    - - - - - "$LP_LOAD"
report longpoll-delivered "long-poll: delivered, once each" "all" "${LP[delivered]} / ${LP[sent]}" "$r_delivered" \
    - - - - "${LP[send_errors]}" "$LP_LOAD"
report longpoll-latency "long-poll: delivery p99 at $BENCH_SYNC_RATE messages/s" "<= $TARGET_DELIVERY_P99 ms" "$(ms "${LP[p99_ms]}")" \
    "$r_latency" - "${LP[rate]}" "${LP[p50_ms]}" "${LP[p99_ms]}" "${LP[send_errors]}" "$LP_LOAD"
