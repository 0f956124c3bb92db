#!/usr/bin/env bash
# make bench: throughput and latency through nginx (wrk), then the workers' memory around one large
# streamed upload.
#
#   1. seeds BENCH_USERS users with known sessions directly in PostgreSQL (scripts/bench/seed.sql);
#   2. wrk through nginx, BENCH_CONNECTIONS connections, BENCH_THREADS threads, a BENCH_WARMUP
#      warm-up then BENCH_DURATION measured, against: nginx alone (/_bench/nginx, the ceiling), the
#      app's trivial FastCGI route (/_bench/fcgi), /getVersion, /chat/getUserById and /chat/ready
#      (the last two authenticated, rotating over the seeded tokens: scripts/bench/wrk.lua);
#   3. prints req/s, p50, p99 and the ratios to the nginx ceiling and to the FastCGI route;
#   4. sums the workers' RSS before, during (peak) and after one doUploads of BENCH_UPLOAD_MIB.
#
# The stack: the running one if `scripts/stack.sh status` finds it (same STACK_DIR / HTTP_PORT /
# HTTPS_PORT / PG_PORT environment as stack.sh; the defaults are `make run`'s), otherwise a
# throwaway stack on free ports, brought up like scripts/test.sh does and torn down afterwards.
# BENCH_FRESH_STACK=1 always uses a throwaway stack.
#
# Environment (defaults): BENCH_USERS (1000), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_DURATION (10), BENCH_WARMUP (2), BENCH_UPLOAD_MIB (1024: capped at the doUploads limit,
# which is 200 MiB by API.md §9 and nginx), BENCH_KEEP_USERS (0: on a running stack, the seeded
# users are deleted at the end), CHAT_BIN (as stack.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$ROOT/scripts/stack.sh"
BENCH_DIR="$ROOT/scripts/bench"
if [ -d /opt/swift/usr/bin ]; then export PATH="/opt/swift/usr/bin:$PATH"; fi
cd "$ROOT"

BENCH_USERS="${BENCH_USERS:-1000}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-32}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_DURATION="${BENCH_DURATION:-10}"
BENCH_WARMUP="${BENCH_WARMUP:-2}"
BENCH_UPLOAD_MIB="${BENCH_UPLOAD_MIB:-1024}"
BENCH_KEEP_USERS="${BENCH_KEEP_USERS:-0}"
BENCH_FRESH_STACK="${BENCH_FRESH_STACK:-0}"
# Mobiles of the seeded users: +999 is no country's code, so these never clash with real numbers.
BENCH_PREFIX="+99977"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for var in BENCH_USERS BENCH_CONNECTIONS BENCH_THREADS BENCH_DURATION BENCH_WARMUP BENCH_UPLOAD_MIB; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive number: ${!var}"
done
[ "$BENCH_USERS" -le 9999999 ] || die "BENCH_USERS must be at most 9999999"

# ---------------------------------------------------------------------------------------------
# The stack

OWN_STACK=0
WORK="$(mktemp -d /tmp/chat-bench-work.XXXXXX)"
SAMPLER_PID=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    if [ "$OWN_STACK" = "1" ]; then
        log "tearing down the throwaway stack in $STACK_DIR"
        "$STACK" down || log "warning: stack.sh down failed"
        if [[ "$STACK_DIR" == /tmp/chat-bench.* ]]; then rm -rf -- "$STACK_DIR"; fi
    elif [ "${SEEDED:-0}" = "1" ] && [ "$BENCH_KEEP_USERS" != "1" ]; then
        log "removing the seeded bench users"
        psql_chat -v prefix="$BENCH_PREFIX" -f "$BENCH_DIR/cleanup.sql" >/dev/null \
            || log "warning: could not remove the bench users (mobiles $BENCH_PREFIX…)"
    fi
    rm -rf -- "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Free ports, as scripts/test.sh picks them.
CHOSEN_PORTS=" "
pick_port() {
    local var="$1" base="$2" port tries=0
    while :; do
        port=$((base + RANDOM % 1000))
        if [[ "$CHOSEN_PORTS" != *" $port "* ]] && [ -z "$(ss -Htln "sport = :$port")" ]; then
            CHOSEN_PORTS="$CHOSEN_PORTS$port "
            printf -v "$var" '%s' "$port"
            return 0
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || die "no free port near $base"
    done
}

if [ "$BENCH_FRESH_STACK" != "1" ] && "$STACK" status >/dev/null 2>&1; then
    log "using the running stack (STACK_DIR ${STACK_DIR:-$ROOT/.data}, http port ${HTTP_PORT:-8080})"
else
    OWN_STACK=1
    "$STACK" deps
    if [ -z "${CHAT_BIN:-}" ]; then
        "$STACK" build
    fi
    STACK_DIR="$(mktemp -d /tmp/chat-bench.XXXXXX)"
    pick_port HTTP_PORT 18080
    pick_port HTTPS_PORT 18080
    pick_port PG_PORT 56000
    CHAT_BIN="${CHAT_BIN:-$ROOT/.build/release/chat-fcgi}"
    export STACK_DIR HTTP_PORT HTTPS_PORT PG_PORT CHAT_BIN
    log "throwaway stack in $STACK_DIR: http $HTTP_PORT, https $HTTPS_PORT, postgres $PG_PORT"
    "$STACK" up >/dev/null
fi
command -v wrk >/dev/null 2>&1 || "$STACK" deps
command -v wrk >/dev/null 2>&1 || die "wrk is missing (apt-get install wrk)"

# STACK_DIR, HTTP_PORT, PGHOST, PGPORT, CHAT_TEST_PIDFILE, CHAT_TEST_UPLOADS_DIR, CHAT_TEST_CONFIG, …
eval "$("$STACK" env)"
BASE="http://127.0.0.1:$HTTP_PORT"

psql_chat() {
    # PGHOST and PGPORT come from `stack.sh env` (its socket folder and port).
    # shellcheck disable=SC2153
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U chat -d chat -v ON_ERROR_STOP=1 "$@"
}

# ---------------------------------------------------------------------------------------------
# 1. Seed

CREDENTIALS="$WORK/credentials.txt"
log "seeding $BENCH_USERS users with sessions"
SEEDED=1
psql_chat -At -F ' ' -v users="$BENCH_USERS" -v salt="$(openssl rand -hex 16)" -v prefix="$BENCH_PREFIX" \
    -f "$BENCH_DIR/seed.sql" >"$CREDENTIALS"
[ "$(wc -l <"$CREDENTIALS")" -eq "$BENCH_USERS" ] || die "seeding produced $(wc -l <"$CREDENTIALS") sessions, not $BENCH_USERS"
read -r FIRST_TOKEN _ < <(head -n 1 "$CREDENTIALS")
read -r _ OTHER_ID < <(tail -n 1 "$CREDENTIALS")

# ---------------------------------------------------------------------------------------------
# 2. Throughput and latency

# Each endpoint must answer properly before it is measured (a fast 401 or 404 measures nothing).
check() {
    local name="$1" path="$2" auth="$3" expect="$4" out
    local -a headers=()
    if [ "$auth" = "1" ]; then headers=(-H "Authorization: Bearer $FIRST_TOKEN"); fi
    out="$(curl -sS --max-time 10 -w '\n%{http_code}' "${headers[@]}" "$BASE$path")" || die "$name: no answer from $BASE$path"
    local status="${out##*$'\n'}" body="${out%$'\n'*}"
    [ "$status" = "200" ] || die "$name: HTTP $status from $path: $body"
    [[ "$body" == *"$expect"* ]] || die "$name: unexpected answer from $path: $body"
}

NAMES=(nginx fcgi getVersion getUserById ready)
declare -A BPATH=(
    [nginx]="/_bench/nginx" [fcgi]="/_bench/fcgi" [getVersion]="/getVersion"
    [getUserById]="/chat/getUserById?destId={id}" [ready]="/chat/ready"
)
declare -A BAUTH=([nginx]=0 [fcgi]=0 [getVersion]=0 [getUserById]=1 [ready]=1)
declare -A BLABEL=(
    [nginx]="nginx /_bench/nginx (ceiling)" [fcgi]="FastCGI /_bench/fcgi" [getVersion]="/getVersion"
    [getUserById]="/chat/getUserById (auth)" [ready]="/chat/ready (auth)"
)
check nginx /_bench/nginx 0 "ok"
check fcgi /_bench/fcgi 0 '"code":1'
check getVersion /getVersion 0 '"code":1'
check getUserById "/chat/getUserById?destId=$OTHER_ID" 1 '"code":1'
check ready /chat/ready 1 '"code":1'

declare -A RPS P50 P99 ERRS
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"; }

for name in "${NAMES[@]}"; do
    creds="-"
    if [ "${BAUTH[$name]}" = "1" ]; then creds="$CREDENTIALS"; fi
    log "wrk ${BLABEL[$name]}: ${BENCH_WARMUP} s warm-up, ${BENCH_DURATION} s measured"
    wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"${BENCH_WARMUP}s" -s "$BENCH_DIR/wrk.lua" \
        "$BASE" -- "${BPATH[$name]}" "$creds" >/dev/null
    out="$(wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"${BENCH_DURATION}s" --latency --timeout 10s \
        -s "$BENCH_DIR/wrk.lua" "$BASE" -- "${BPATH[$name]}" "$creds")"
    printf '%s\n' "$out" >"$WORK/wrk-$name.txt"
    line="$(grep '^BENCH ' <<<"$out")" || die "no summary from wrk for $name:"$'\n'"$out"
    RPS[$name]="$(field rps "$line")"
    P50[$name]="$(field p50_ms "$line")"
    P99[$name]="$(field p99_ms "$line")"
    ERRS[$name]=$(( $(field socket_errors "$line") + $(field http_errors "$line") ))
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

workers_count="$( (pgrep -P "$(head -n 1 "$CHAT_TEST_PIDFILE")" || true) | wc -l)"
threads="$(sed -n 's/^threads[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$CHAT_TEST_CONFIG" | tail -n 1)"
echo
echo "Throughput through nginx: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, ${BENCH_DURATION} s each after ${BENCH_WARMUP} s warm-up;"
echo "$(nproc) CPUs; app: $workers_count workers x ${threads:-8} threads; $BENCH_USERS seeded sessions."
echo
printf '%-32s %10s %9s %9s %9s %9s %7s\n' "endpoint" "req/s" "p50 ms" "p99 ms" "x nginx" "x fcgi" "errors"
printf '%-32s %10s %9s %9s %9s %9s %7s\n' "--------------------------------" "----------" "---------" "---------" "---------" "---------" "-------"
for name in "${NAMES[@]}"; do
    printf '%-32s %10.0f %9.2f %9.2f %9s %9s %7s\n' "${BLABEL[$name]}" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" \
        "$(ratio "${RPS[$name]}" "${RPS[nginx]}")" "$(ratio "${RPS[$name]}" "${RPS[fcgi]}")" "${ERRS[$name]}"
done
echo

# ---------------------------------------------------------------------------------------------
# 3. Memory around one large upload

# Sum of VmRSS (KiB) over the supervisor's children (the workers).
workers_rss_kib() {
    local supervisor pid total=0 kib
    supervisor="$(head -n 1 "$CHAT_TEST_PIDFILE")"
    for pid in $(pgrep -P "$supervisor"); do
        kib="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)"
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

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
nginx_limit="$(awk '/location = \/chat\/doUploads/ { inside = 1 } inside && /client_max_body_size/ { gsub(/;/, "", $2); print $2; exit } inside && /}/ { inside = 0 }' "$ROOT/deploy/nginx-chat.conf")"
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

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "Memory: workers' RSS (sum over $workers_count workers) around one $((size / 1048576)) MiB doUploads (${elapsed} s):"
printf '  before %s MiB, peak during %s MiB, after %s MiB\n' "$(mib "$rss_before")" "$(mib "$rss_peak")" "$(mib "$rss_after")"
printf '  growth: %s MiB after, %s MiB at the peak\n' "$(mib $((rss_after - rss_before)))" "$(mib $((rss_peak - rss_before)))"
if [ "$size" -lt "$requested" ]; then
    echo "  (capped: $BENCH_UPLOAD_MIB MiB is over the doUploads limit of $((size / 1048576)) MiB, API.md §9)"
fi
exit 0
