# shellcheck shell=bash disable=SC2154  # sourced by scripts/bench.sh, whose variables it uses
# order: 10
# Part "base" of scripts/bench.sh: the basic endpoints and the memory of a large upload.
#   1. seeds BENCH_USERS users with known sessions directly in PostgreSQL (scripts/bench/seed.sql);
#   2. wrk through nginx against: nginx alone (/_bench/nginx, the ceiling), the app's trivial
#      FastCGI route (/_bench/fcgi), /getVersion, /chat/getUserById and /chat/ready (the last two
#      authenticated, rotating over the seeded tokens); prints req/s, p50, p99 and the ratios to the
#      nginx ceiling and to the FastCGI route. The answers are not read (nginx's own is no
#      envelope): statuses >= 400 and socket errors count as errors;
#   3. sums the workers' RSS before, during (peak) and after one doUploads of BENCH_UPLOAD_MIB.
# Targets (the platform issue), on a 2-core machine at 32 connections: getUserById >= 14,550 req/s
# (1.5 x the 9.7k of Hummingbird 2 + PostgresNIO) and >= 0.60 x the FastCGI route; p99 <= 10 ms for
# every read endpoint; the workers' RSS growth (peak) during the upload <= 16 MiB.

# ---------------------------------------------------------------------------------------------
# 1. Seed

CREDENTIALS="$WORK/credentials.txt"
log "seeding $BENCH_USERS users with sessions"
clean_at_exit "$BENCH_PREFIX"
psql_chat -At -F ' ' -v users="$BENCH_USERS" -v salt="$(openssl rand -hex 16)" -v prefix="$BENCH_PREFIX" \
    -f "$BENCH_DIR/seed.sql" >"$CREDENTIALS"
[ "$(wc -l <"$CREDENTIALS")" -eq "$BENCH_USERS" ] || die "seeding produced $(wc -l <"$CREDENTIALS") sessions, not $BENCH_USERS"
settle users sessions
read -r FIRST_TOKEN _ < <(head -n 1 "$CREDENTIALS")

# ---------------------------------------------------------------------------------------------
# 2. Throughput and latency

scenario nginx label="nginx /_bench/nginx (ceiling)" path=/_bench/nginx bodies=none expect=ok
scenario fcgi label="FastCGI /_bench/fcgi" path=/_bench/fcgi bodies=none
scenario getVersion label="/getVersion" path=/getVersion bodies=none target="p99 <= 10 ms"
scenario getUserById label="/chat/getUserById (auth)" path="/chat/getUserById?destId={id}" creds="$CREDENTIALS" \
    bodies=none target="req/s >= 14550; x fcgi >= 0.60; p99 <= 10 ms"
scenario ready label="/chat/ready (auth)" path=/chat/ready creds="$CREDENTIALS" bodies=none target="p99 <= 10 ms"
run_scenario nginx fcgi getVersion getUserById ready

echo
echo "Throughput through nginx: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, ${BENCH_DURATION} s each after ${BENCH_WARMUP} s warm-up;"
echo "$(nproc) CPUs; app: $workers_count workers x ${threads:-8} threads; $BENCH_USERS seeded sessions. Answers not read:"
echo "errors are socket errors and statuses >= 400, in the warm-up and the measured run; load: 1-minute load average"
echo "when the measured run started."
echo
scenario_table -x nginx -x fcgi nginx fcgi getVersion getUserById ready
echo

# ---------------------------------------------------------------------------------------------
# 3. Memory around one large upload

# to_bytes 200m -> 209715200 (nginx size syntax).
to_bytes() {
    local v="${1,,}"
    case "$v" in
        *k) echo $(( ${v%k} * 1024 )) ;;
        *m) echo $(( ${v%m} * 1024 * 1024 )) ;;
        *g) echo $(( ${v%g} * 1024 * 1024 * 1024 )) ;;
        *) echo "$v" ;;
    esac
}

# The upload can be at most what nginx (client_max_body_size of /chat/doUploads) and the app
# (max_file_bytes) accept.
requested=$((BENCH_UPLOAD_MIB * 1024 * 1024))
# The stack's locations: a copy in its nginx folder when it raised the limit (UPLOAD_MAX_MIB).
locations="$STACK_DIR/nginx/nginx-chat.conf"
[ -f "$locations" ] || locations="$ROOT/deploy/nginx-chat.conf"
nginx_limit="$(awk '/location = \/chat\/doUploads/ { inside = 1 } inside && /client_max_body_size/ { gsub(/;/, "", $2); print $2; exit } inside && /}/ { inside = 0 }' "$locations")"
nginx_limit="$(to_bytes "${nginx_limit:-200m}")"
app_limit="${CHAT_MAX_FILE_BYTES:-$(sed -n 's/^max_file_bytes[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$CHAT_TEST_CONFIG" | tail -n 1)}"
app_limit="${app_limit:-209715200}"
size="$requested"
[ "$size" -le "$nginx_limit" ] || size="$nginx_limit"
[ "$size" -le "$app_limit" ] || size="$app_limit"
if [ "$size" -lt "$requested" ]; then
    log "the upload is capped at the doUploads limit: $((size / 1048576)) MiB instead of $BENCH_UPLOAD_MIB MiB (nginx $((nginx_limit / 1048576)) MiB, app $((app_limit / 1048576)) MiB)"
fi

upload="$WORK/upload.zip"
printf 'PK\003\004' >"$upload"
truncate -s "$size" "$upload"     # the rest is zeros (sparse on disk)

rss_before="$(workers_rss_kib)"
# Peak RSS during the upload, sampled every 0.1 s.
( peak=0; while :; do r="$(workers_rss_kib)"; [ "$r" -le "$peak" ] || { peak="$r"; echo "$peak" >"$WORK/peak"; }; sleep 0.1; done ) &
SAMPLER_PID=$!
log "uploading $((size / 1048576)) MiB to /chat/doUploads"
started=$SECONDS
upload_status="$(curl -sS --max-time 600 -o "$WORK/upload.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $FIRST_TOKEN" -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$upload" "$BASE/chat/doUploads?fileExt=zip")" || upload_status="curl failed"
elapsed=$((SECONDS - started))
sleep 0.3
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
rss_peak="$(cat "$WORK/peak" 2>/dev/null || echo "$rss_before")"
rss_after="$(workers_rss_kib)"
rm -f "$upload"

answer="$(cat "$WORK/upload.json" 2>/dev/null || true)"
if [ "$upload_status" != "200" ] || [[ "$answer" != *'"code":1'* ]]; then
    die "the upload failed: HTTP $upload_status $answer"
fi
# Delete the stored file: its URL is /uploads/YYYY/MM/<random>.zip (JSON may escape the slashes).
url="$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' <<<"$answer" | tr -d "\\\\")"
relative="${url#*/uploads/}"
if [[ "$relative" =~ ^[0-9]{4}/[0-9]{2}/[a-z0-9]+\.zip$ ]] && [ -f "$CHAT_TEST_UPLOADS_DIR/$relative" ]; then
    rm -f -- "$CHAT_TEST_UPLOADS_DIR/$relative"
else
    log "warning: could not find the stored upload to delete it (url: $url)"
fi

echo "Memory: workers' RSS (sum over $workers_count workers) around one $((size / 1048576)) MiB doUploads (${elapsed} s):"
printf '  before %s MiB, peak during %s MiB, after %s MiB\n' "$(mib "$rss_before")" "$(mib "$rss_peak")" "$(mib "$rss_after")"
printf '  growth: %s MiB after, %s MiB at the peak\n' "$(mib $((rss_after - rss_before)))" "$(mib $((rss_peak - rss_before)))"
if [ "$size" -lt "$requested" ]; then
    echo "  (capped: $BENCH_UPLOAD_MIB MiB is over the running stack's doUploads limit of $((size / 1048576)) MiB, API.md §6;"
    echo "  a throwaway stack, BENCH_FRESH_STACK=1, raises its limit to BENCH_UPLOAD_MIB)"
fi

upload_growth="$(mib $((rss_peak - rss_before)))"
report upload-rss "workers' RSS growth, $((size / 1048576)) MiB upload" "<= 16 MiB" "$upload_growth MiB" \
    "$(verdict "$upload_growth" le 16)" - - - - - "$(load1)"
