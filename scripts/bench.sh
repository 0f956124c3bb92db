#!/usr/bin/env bash
# make bench: throughput and latency through nginx (wrk), the workers' memory around one large
# streamed upload, then the social graph and messaging at realistic sizes, each against a target.
#
# Part "base":
#   1. seeds BENCH_USERS users with known sessions directly in PostgreSQL (scripts/bench/seed.sql);
#   2. wrk through nginx, BENCH_CONNECTIONS connections, BENCH_THREADS threads, a BENCH_WARMUP
#      warm-up then BENCH_DURATION measured, against: nginx alone (/_bench/nginx, the ceiling), the
#      app's trivial FastCGI route (/_bench/fcgi), /getVersion, /chat/getUserById and /chat/ready
#      (the last two authenticated, rotating over the seeded tokens: scripts/bench/wrk.lua);
#   3. prints req/s, p50, p99 and the ratios to the nginx ceiling and to the FastCGI route;
#   4. sums the workers' RSS before, during (peak) and after one doUploads of BENCH_UPLOAD_MIB.
# Part "social" (users: scripts/bench/users-seed.sql; graph: scripts/bench/social-seed.sql):
#   5. /chat/ready of a user with 500 friends, 50 groups, pending requests, pinned and muted
#      conversations and unread messages; /chat/getGroupMember of a 500-member group, by its
#      members; /chat/queryGroup over BENCH_SEARCH_GROUPS live groups (with group_name_grams),
#      rotating over 1-, 2- and 3+-character texts (scripts/bench/queries.txt). wrk as above, with
#      scripts/bench/wrk-api.lua, which also counts answers that are not 2xx or not "code":1 (for
#      ready and getGroupMember, whose answers are 150-190 KB, in the warm-up run only: the
#      measured run counts statuses >= 400, see run_wrk).
# Part "messaging" (scripts/bench/messaging-seed.sql, history-seed.sql, longpoll.py):
#   6. /chat/sendMsg 1:1 throughput (POST, rotating over 1,000 friend pairs and both directions,
#      a unique clientMsgId per request);
#   7. long-poll delivery: BENCH_SYNC_CLIENTS clients parked in /chat/sync, then BENCH_SYNC_RATE
#      messages/s for BENCH_SYNC_SECONDS s from their friends over BENCH_SYNC_SENDERS connections:
#      delivery latency, and the workers' threads and RSS while parked and while sending
#      (scripts/bench/longpoll.py, Python 3 standard library);
#   8. /chat/getMsgHistory (size 20, random sendTime) in a conversation of a 5-million-row
#      messages table (BENCH_HISTORY_MESSAGES bench rows, seeded with generate_series).
# Before each of these measurements the tables the benchmark itself just filled are vacuumed and a
# CHECKPOINT is taken (settle), so that autovacuum and the seeding's writes stay out of it.
# Prints a table per part with the targets next to the figures, and a summary with the machine's
# load average (other work on the machine makes figures noisy). The targets are informational: a
# missed target does not fail the run; a wrong answer (not HTTP 200 with "code":1) before a
# measurement does.
#
# The stack: the running one if `scripts/stack.sh status` finds it (same STACK_DIR / HTTP_PORT /
# HTTPS_PORT / PG_PORT environment as stack.sh; the defaults are `make run`'s), otherwise a
# throwaway stack on free ports, brought up like scripts/test.sh does and torn down afterwards.
# BENCH_FRESH_STACK=1 always uses a throwaway stack. On a running stack everything seeded is
# deleted at the end (scripts/bench/cleanup.sql: bench users, their groups, conversations and
# messages, the 5 million history rows included), and leftovers of an interrupted run at the start.
#
# Environment (defaults): BENCH_PARTS (base,social,messaging), BENCH_USERS (1000),
# BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_DURATION (10), BENCH_WARMUP (2),
# BENCH_UPLOAD_MIB (1024; the throwaway stack raises its doUploads limit to it, UPLOAD_MAX_MIB of
# stack.sh; on a running stack it is capped at that stack's limit, 200 MiB by API.md §6),
# BENCH_SEARCH_GROUPS (100000), BENCH_HISTORY_MESSAGES (5000000), BENCH_SYNC_CLIENTS (2000),
# BENCH_SYNC_RATE (1000), BENCH_SYNC_SECONDS (10), BENCH_SYNC_SENDERS (32), BENCH_KEEP_USERS (0:
# on a running stack, everything seeded is deleted at the end; 1 keeps it until the next run),
# BENCH_RESULTS (.build/bench/results-<UTC time>.tsv: the summary's rows with the commit),
# CHAT_BIN (as stack.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$ROOT/scripts/stack.sh"
BENCH_DIR="$ROOT/scripts/bench"
if [ -d /opt/swift/usr/bin ]; then export PATH="/opt/swift/usr/bin:$PATH"; fi
cd "$ROOT"

BENCH_USERS="${BENCH_USERS:-1000}"
BENCH_RESULTS="${BENCH_RESULTS:-$ROOT/.build/bench/results-$(date -u +%Y%m%dT%H%M%SZ).tsv}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-32}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_DURATION="${BENCH_DURATION:-10}"
BENCH_WARMUP="${BENCH_WARMUP:-2}"
BENCH_UPLOAD_MIB="${BENCH_UPLOAD_MIB:-1024}"
BENCH_KEEP_USERS="${BENCH_KEEP_USERS:-0}"
BENCH_FRESH_STACK="${BENCH_FRESH_STACK:-0}"
BENCH_PARTS="${BENCH_PARTS:-base,social,messaging}"
BENCH_SEARCH_GROUPS="${BENCH_SEARCH_GROUPS:-100000}"
BENCH_HISTORY_MESSAGES="${BENCH_HISTORY_MESSAGES:-5000000}"
BENCH_SYNC_CLIENTS="${BENCH_SYNC_CLIENTS:-2000}"
BENCH_SYNC_RATE="${BENCH_SYNC_RATE:-1000}"
BENCH_SYNC_SECONDS="${BENCH_SYNC_SECONDS:-10}"
BENCH_SYNC_SENDERS="${BENCH_SYNC_SENDERS:-32}"
# Mobiles of the seeded users: +999 is no country's code, so these never clash with real numbers.
# +99977: the basic part's users; +99978: the social and messaging parts' users.
BENCH_PREFIX="+99977"
EXT_PREFIX="+99978"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for var in BENCH_USERS BENCH_CONNECTIONS BENCH_THREADS BENCH_DURATION BENCH_WARMUP BENCH_UPLOAD_MIB \
           BENCH_SEARCH_GROUPS BENCH_HISTORY_MESSAGES BENCH_SYNC_CLIENTS BENCH_SYNC_RATE BENCH_SYNC_SECONDS \
           BENCH_SYNC_SENDERS; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive number: ${!var}"
done
[ "$BENCH_USERS" -le 9999999 ] || die "BENCH_USERS must be at most 9999999"
[ "$BENCH_SYNC_CLIENTS" -le 9999 ] || die "BENCH_SYNC_CLIENTS must be at most 9999"
[ "$BENCH_HISTORY_MESSAGES" -ge 10000 ] || die "BENCH_HISTORY_MESSAGES must be at least 10000"
for part in ${BENCH_PARTS//,/ }; do
    case "$part" in base|social|messaging) ;; *) die "BENCH_PARTS: unknown part $part (base, social, messaging)" ;; esac
done
want() { [[ ",$BENCH_PARTS," == *",$1,"* ]]; }
command -v python3 >/dev/null 2>&1 || ! want messaging || die "python3 is needed for the long-poll benchmark"

BENCH_STARTED=$SECONDS
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
load1() { cut -d' ' -f1 /proc/loadavg; }
LOAD_AT_START="$(load_avg)"

# ---------------------------------------------------------------------------------------------
# The stack

OWN_STACK=0
WORK="$(mktemp -d /tmp/chat-bench-work.XXXXXX)"
SAMPLER_PID=""
LONGPOLL_PID=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    if [ -n "$LONGPOLL_PID" ]; then kill "$LONGPOLL_PID" 2>/dev/null || true; wait "$LONGPOLL_PID" 2>/dev/null || true; fi
    if [ "$OWN_STACK" = "1" ]; then
        log "tearing down the throwaway stack in $STACK_DIR"
        "$STACK" down || log "warning: stack.sh down failed"
        if [[ "$STACK_DIR" == /tmp/chat-bench.* ]]; then rm -rf -- "$STACK_DIR"; fi
    elif [ "$BENCH_KEEP_USERS" != "1" ]; then
        if [ "${SEEDED:-0}" = "1" ]; then
            log "removing the seeded bench users"
            psql_chat -v prefix="$BENCH_PREFIX" -f "$BENCH_DIR/cleanup.sql" >/dev/null \
                || log "warning: could not remove the bench users (mobiles $BENCH_PREFIX…)"
        fi
        if [ "${SEEDED_EXT:-0}" = "1" ]; then
            log "removing the social and messaging seed (users, groups, conversations, messages)"
            local started=$SECONDS
            psql_chat -v prefix="$EXT_PREFIX" -f "$BENCH_DIR/cleanup.sql" >/dev/null \
                || log "warning: could not remove the bench data (mobiles $EXT_PREFIX…)"
            log "removed in $((SECONDS - started)) s"
        fi
    fi
    rm -rf -- "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Free ports, as scripts/test.sh picks them.
# shellcheck source=scripts/ports.sh
source "$ROOT/scripts/ports.sh"

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
    pick_port PG_PORT 25000
    CHAT_BIN="${CHAT_BIN:-$ROOT/.build/release/chat-fcgi}"
    # This stack takes an upload of BENCH_UPLOAD_MIB (1 GiB by default) on doUploads, over the
    # production limit of 200 MiB (API.md §6): the limit is a product rule, the measurement is of
    # the streaming, whose memory must not grow with the file.
    UPLOAD_MAX_MIB=""
    if want base && [ "$BENCH_UPLOAD_MIB" -gt 200 ]; then UPLOAD_MAX_MIB="$BENCH_UPLOAD_MIB"; fi
    export STACK_DIR HTTP_PORT HTTPS_PORT PG_PORT CHAT_BIN UPLOAD_MAX_MIB
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
# Shared helpers

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
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

# The app's workers (the supervisor's children).
supervisor_pid() { head -n 1 "$CHAT_TEST_PIDFILE"; }
workers_count="$( (pgrep -P "$(supervisor_pid)" || true) | wc -l)"
threads="$(sed -n 's/^threads[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$CHAT_TEST_CONFIG" | tail -n 1)"

# settle [TABLE…]: before a measurement, VACUUM (ANALYZE) the tables the benchmark itself just
# filled (so that autovacuum does not start on them in the middle of it), then a CHECKPOINT (so that
# the writes of the seeding are not flushed during it either). The CHECKPOINT needs a superuser: the
# local stack lets "postgres" in through its socket; where that fails it is skipped.
settle() {
    local table
    for table in "$@"; do psql_chat -c "VACUUM (ANALYZE) $table"; done
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U postgres -d chat -c CHECKPOINT >/dev/null 2>&1 \
        || log "(no CHECKPOINT: not allowed as postgres here)"
}

if want base; then
    # ---------------------------------------------------------------------------------------------
    # 1. Seed

    CREDENTIALS="$WORK/credentials.txt"
    log "seeding $BENCH_USERS users with sessions"
    SEEDED=1
    psql_chat -At -F ' ' -v users="$BENCH_USERS" -v salt="$(openssl rand -hex 16)" -v prefix="$BENCH_PREFIX" \
        -f "$BENCH_DIR/seed.sql" >"$CREDENTIALS"
    [ "$(wc -l <"$CREDENTIALS")" -eq "$BENCH_USERS" ] || die "seeding produced $(wc -l <"$CREDENTIALS") sessions, not $BENCH_USERS"
    settle users sessions
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
fi


# ---------------------------------------------------------------------------------------------
# Helpers of the social and messaging parts

# Targets on a 2-core machine at 32 connections.
TARGET_READY_P99=25          # ms, /chat/ready of a user with 500 friends and 50 groups
TARGET_MEMBERS_P99=15        # ms, /chat/getGroupMember of a 500-member group
TARGET_QUERY_P99=15          # ms, /chat/queryGroup over 100,000 live groups
TARGET_SEND_RATE=3000        # messages/s, /chat/sendMsg 1:1
TARGET_HISTORY_P99=10        # ms, /chat/getMsgHistory over 5 million messages
TARGET_DELIVERY_P99=100      # ms, long-poll delivery at 1,000 messages/s
TARGET_SYNC_RSS_MIB=200      # MiB, the workers' RSS (sum) with 2,000 parked syncs

RUN_ID="$(date +%s)"

# verdict VALUE le|ge LIMIT: "ok" when VALUE <= (ge: >=) LIMIT, "MISSED" when not, "-" without a value.
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "" || v == "-" || tolower(v) ~ /nan/) { print "-"; exit }
        ok = (op == "le") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
        print (ok ? "ok" : "MISSED") }'
}

# ms 12.3456 -> "12.35 ms"
ms() { awk -v v="$1" 'BEGIN { if (v == "" || tolower(v) ~ /nan/) print "-"; else printf "%.2f ms\n", v }'; }

# The final summary: "what|target|measured|result" rows.
SUMMARY=()
summary_add() { SUMMARY+=("$1|$2|$3|$4"); }

# The basic part's targets (the platform issue), on a 2-core machine at 32 connections.
TARGET_USER_RPS=14550        # req/s, /chat/getUserById: 1.5 x the 9.7k of Hummingbird 2 + PostgresNIO
TARGET_USER_FCGI_RATIO=0.60  # /chat/getUserById against the app's trivial FastCGI route
TARGET_READ_P99=10           # ms, every read endpoint of the basic part
TARGET_UPLOAD_GROWTH_MIB=16  # MiB, the workers' RSS growth (peak) during the big doUploads
if want base; then
    summary_add "/chat/getUserById throughput" ">= $TARGET_USER_RPS req/s" "$(printf '%.0f' "${RPS[getUserById]}") req/s" \
        "$(verdict "${RPS[getUserById]}" ge "$TARGET_USER_RPS")"
    user_ratio="$(ratio "${RPS[getUserById]}" "${RPS[fcgi]}")"
    summary_add "/chat/getUserById / FastCGI route" ">= $TARGET_USER_FCGI_RATIO" "$user_ratio" \
        "$(verdict "$user_ratio" ge "$TARGET_USER_FCGI_RATIO")"
    for name in getVersion getUserById ready; do
        summary_add "${BLABEL[$name]} p99" "<= $TARGET_READ_P99 ms" "$(ms "${P99[$name]}")" \
            "$(verdict "${P99[$name]}" le "$TARGET_READ_P99")"
    done
    upload_growth="$(mib $((rss_peak - rss_before)))"
    summary_add "workers' RSS growth, $((size / 1048576)) MiB upload" "<= $TARGET_UPLOAD_GROWTH_MIB MiB" "$upload_growth MiB" \
        "$(verdict "$upload_growth" le "$TARGET_UPLOAD_GROWTH_MIB")"
fi

# Sessions from users-seed.sql ("number token user_id") of users LO..HI, as "token user_id" lines.
ext_creds() { awk -v lo="$1" -v hi="$2" '$1 >= lo && $1 <= hi { print $2, $3 }' "$EXT_CREDENTIALS"; }

# kv KEY TEXT: the rest of TEXT's line that starts with KEY.
kv() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }' <<<"$2"; }

# check_api NAME TOKEN PATH EXPECT [curl arguments…]: HTTP 200 with EXPECT in the body, or die
# (a fast 401, 403 or 404 measures nothing).
check_api() {
    local name="$1" token="$2" path="$3" expect="$4" out status body
    shift 4
    out="$(curl -sS --max-time 30 -w '\n%{http_code}' -H "Authorization: Bearer $token" "$@" "$BASE$path")" \
        || die "$name: no answer from $BASE$path"
    status="${out##*$'\n'}"
    body="${out%$'\n'*}"
    [ "$status" = "200" ] || die "$name: HTTP $status from $path: ${body:0:300}"
    # JSON written by PostgreSQL (the long lists) has spaces around the colons.
    [[ "${body//\" : /\":}" == *"$expect"* ]] || die "$name: unexpected answer from $path: ${body:0:300}"
}

# run_wrk KEY LABEL ARGS…: wrk with scripts/bench/wrk-api.lua and ARGS (its mode and arguments), a
# warm-up then the measured run. "@RUN@" in ARGS becomes an id of its own in each of the two runs.
# W_CHECK=warm-up (for endpoints with answers of 150 KB and more): every body of the warm-up is
# checked, the measured run counts statuses >= 400 and socket errors only (see wrk-api.lua: reading
# each body in wrk's Lua cost about a quarter of the two cores). Otherwise both runs check every body.
# The errors column adds the failures of both runs.
declare -A W_LABEL W_OK W_P50 W_P99 W_ERR W_LOAD W_CHECKED
run_wrk() {
    local key="$1" label="$2" out line warm_line check_measured=1
    shift 2
    local -a warm=("${@//@RUN@/${RUN_ID}w}") measured=("${@//@RUN@/${RUN_ID}m}")
    if [ "${W_CHECK:-all}" = "warm-up" ]; then check_measured=0; fi
    W_LABEL[$key]="$label"
    log "wrk $label: ${BENCH_WARMUP} s warm-up, ${BENCH_DURATION} s measured"
    out="$(WRK_CHECK_BODIES=1 wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"${BENCH_WARMUP}s" --timeout 10s \
        -s "$BENCH_DIR/wrk-api.lua" "$BASE" -- "${warm[@]}")"
    warm_line="$(grep '^BENCH ' <<<"$out")" || die "no summary from the wrk warm-up for $label:"$'\n'"$out"
    W_LOAD[$key]="$(load1)"
    out="$(WRK_CHECK_BODIES=$check_measured wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"${BENCH_DURATION}s" \
        --latency --timeout 10s -s "$BENCH_DIR/wrk-api.lua" "$BASE" -- "${measured[@]}")"
    printf '%s\n' "$warm_line" "$out" >"$WORK/wrk-$key.txt"
    line="$(grep '^BENCH ' <<<"$out")" || die "no summary from wrk for $label:"$'\n'"$out"
    W_OK[$key]="$(field ok_rps "$line")"
    W_P50[$key]="$(field p50_ms "$line")"
    W_P99[$key]="$(field p99_ms "$line")"
    W_CHECKED[$key]=$(( $(field requests "$warm_line") + check_measured * $(field requests "$line") ))
    W_ERR[$key]=$(( $(field socket_errors "$warm_line") + $(field non2xx "$warm_line") + $(field bad_bodies "$warm_line")
                    + $(field socket_errors "$line") + $(field non2xx "$line") + $(field bad_bodies "$line") ))
    # Unchecked, wrk's own count of statuses >= 400 stands for non2xx.
    if ((check_measured == 0)); then W_ERR[$key]=$(( W_ERR[$key] + $(field http_errors "$line") )); fi
}

table_line() { printf '%-40s %9s %8s %8s %-18s %7s %5s %s\n' "$@"; }
table_header() {
    table_line "endpoint" "ok/s" "p50 ms" "p99 ms" "target" "errors" "load" "result"
    table_line "----------------------------------------" "---------" "--------" "--------" \
        "------------------" "-------" "-----" "------"
}
# table_row KEY TARGET-TEXT RESULT
table_row() {
    table_line "${W_LABEL[$1]}" "$(printf '%.0f' "${W_OK[$1]}")" "$(printf '%.2f' "${W_P50[$1]}")" \
        "$(printf '%.2f' "${W_P99[$1]}")" "$2" "${W_ERR[$1]}" "${W_LOAD[$1]}" "$3"
}

# ---------------------------------------------------------------------------------------------
# The social and messaging parts' users (prefix +99978; the numbers after it give the roles:
#    social 1-541 and 1001-2000, see social-seed.sql; sendMsg pairs 3001-5000; history 6001-8002;
#    long-poll receivers 10001-… and their senders 20001-…)

if want social || want messaging; then
    EXT_CREDENTIALS="$WORK/ext-credentials.txt"
    ranges=""
    if want social; then ranges="1-541,1001-2000"; fi
    if want messaging; then
        ranges="${ranges:+$ranges,}3001-5000,6001-8002,10001-$((10000 + BENCH_SYNC_CLIENTS)),20001-$((20000 + BENCH_SYNC_CLIENTS))"
    fi
    SEEDED_EXT=1
    if [ "$OWN_STACK" != "1" ]; then
        # Leftovers of an interrupted run, if any.
        psql_chat -v prefix="$EXT_PREFIX" -f "$BENCH_DIR/cleanup.sql" >/dev/null
    fi
    log "seeding the social and messaging users with sessions (numbers $ranges)"
    psql_chat -At -F ' ' -v prefix="$EXT_PREFIX" -v salt="$(openssl rand -hex 16)" -v ranges="$ranges" \
        -f "$BENCH_DIR/users-seed.sql" >"$EXT_CREDENTIALS"
    expected="$(awk -v r="$ranges" 'BEGIN { n = split(r, a, ","); for (i = 1; i <= n; i++) { split(a[i], b, "-"); t += b[2] - b[1] + 1 } print t }')"
    [ "$(wc -l <"$EXT_CREDENTIALS")" -eq "$expected" ] || die "users-seed.sql produced $(wc -l <"$EXT_CREDENTIALS") sessions, not $expected"
fi

# ---------------------------------------------------------------------------------------------
# 5. Social graph: ready, getGroupMember, queryGroup

if want social; then
    log "seeding the social graph: one user with 500 friends and 50 groups, $BENCH_SEARCH_GROUPS searchable groups"
    started=$SECONDS
    social="$(psql_chat -At -v prefix="$EXT_PREFIX" -v search_groups="$BENCH_SEARCH_GROUPS" -f "$BENCH_DIR/social-seed.sql")"
    SOCIAL_SEED_SECONDS=$((SECONDS - started))
    read -r BIG_GROUP BIG_COUNT BIG_REAL <<<"$(kv big_group "$social")"
    [ "$(kv ready_friends "$social")" = "500" ] || die "the ready user has $(kv ready_friends "$social") friends, not 500"
    [ "$(kv ready_groups "$social")" = "50" ] || die "the ready user is in $(kv ready_groups "$social") groups, not 50"
    if [ "$BIG_COUNT" != "500" ] || [ "$BIG_REAL" != "500" ]; then
        die "the big group has member_count $BIG_COUNT and $BIG_REAL members, not 500"
    fi
    LIVE_GROUPS="$(kv live_groups "$social")"
    log "seeded in $SOCIAL_SEED_SECONDS s: $LIVE_GROUPS live groups in the database, $(kv grams "$social") group_name_grams rows"
    # social-seed.sql vacuums the tables it fills; the version tables are filled by their triggers.
    settle friend_list_versions member_list_versions user_list_versions

    ext_creds 1 1 >"$WORK/ready.txt"
    read -r READY_TOKEN _ <"$WORK/ready.txt"
    # getGroupMember rotates over the big group's 500 members; queryGroup over the 500 friends.
    psql_chat -At -c "SELECT user_id FROM group_members WHERE group_id = $BIG_GROUP" >"$WORK/big-members.txt"
    awk 'FILENAME == ARGV[1] { member[$1] = 1; next } ($2 in member)' "$WORK/big-members.txt" <(ext_creds 1 501) >"$WORK/members.txt"
    [ "$(wc -l <"$WORK/members.txt")" -eq 500 ] || die "found $(wc -l <"$WORK/members.txt") sessions of the big group's members, not 500"
    ext_creds 2 501 >"$WORK/friends.txt"

    check_api ready "$READY_TOKEN" /chat/ready "\"groupId\":$BIG_GROUP"
    check_api getGroupMember "$READY_TOKEN" "/chat/getGroupMember?groupId=$BIG_GROUP" '"role":"owner"'
    check_api queryGroup "$READY_TOKEN" "/chat/queryGroup?groupName=%E4%BA%AC" '"groupId"'

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
    W_CHECK=warm-up run_wrk ready "/chat/ready (500 friends, 50 groups)" get /chat/ready "$WORK/ready.txt"
    W_CHECK=warm-up run_wrk members "/chat/getGroupMember (500 members)" get "/chat/getGroupMember?groupId=$BIG_GROUP" "$WORK/members.txt"
    run_wrk querygroup "/chat/queryGroup ($((BENCH_SEARCH_GROUPS / 1000))k groups)" querygroup "$WORK/friends.txt" "$BENCH_DIR/queries.txt"

    r_ready="$(verdict "${W_P99[ready]}" le "$TARGET_READY_P99")"
    r_members="$(verdict "${W_P99[members]}" le "$TARGET_MEMBERS_P99")"
    r_query="$(verdict "${W_P99[querygroup]}" le "$TARGET_QUERY_P99")"
    for key in ready members querygroup; do
        if [ "${W_ERR[$key]}" -gt 0 ]; then
            case "$key" in ready) r_ready="MISSED (errors)" ;; members) r_members="MISSED (errors)" ;; *) r_query="MISSED (errors)" ;; esac
        fi
    done

    echo
    echo "Social graph through nginx: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, ${BENCH_DURATION} s each after ${BENCH_WARMUP} s warm-up;"
    echo "$(nproc) CPUs; app: $workers_count workers x ${threads:-8} threads. ready: one user with 500 friends, 50 groups (3 to 500"
    echo "members), 60 pending requests, 45 pinned/muted conversations, 30 unread conversations; getGroupMember: a"
    echo "500-member group, by its members; queryGroup: $BENCH_SEARCH_GROUPS seeded live groups ($LIVE_GROUPS live in all),"
    echo "$(grep -c . "$BENCH_DIR/queries.txt") texts in rotation. Seeded in $SOCIAL_SEED_SECONDS s. ok/s: answers with \"code\":1; errors: socket"
    echo "errors, non-2xx and other bodies, in the warm-up and the measured run; load: 1-minute load average when the"
    echo "measured run started. ready and getGroupMember: every body of the warm-up checked (${W_CHECKED[ready]} and"
    echo "${W_CHECKED[members]} answers), the measured run's statuses only, so that wrk does not copy 150-190 KB per answer"
    echo "into Lua on the two cores the server uses (scripts/bench/wrk-api.lua)."
    echo
    table_header
    table_row ready "p99 <= $TARGET_READY_P99 ms" "$r_ready"
    table_row members "p99 <= $TARGET_MEMBERS_P99 ms" "$r_members"
    table_row querygroup "p99 <= $TARGET_QUERY_P99 ms" "$r_query"
    echo
    echo "queryGroup texts (characters: live groups containing them):"
    for class in 1 2 3; do
        line="$(awk -F'|' -v c="$class" '(c < 3 && $2 == c) || (c == 3 && $2 >= 3) { printf "%s%s (%s)", sep, $1, $3; sep = ", " }' <<<"$matches")"
        case "$class" in 1) label="1 character " ;; 2) label="2 characters" ;; *) label="3 and more  " ;; esac
        echo "  $label: $line"
    done

    summary_add "/chat/ready (500 friends, 50 groups) p99" "<= $TARGET_READY_P99 ms" "$(ms "${W_P99[ready]}")" "$r_ready"
    summary_add "/chat/getGroupMember (500 members) p99" "<= $TARGET_MEMBERS_P99 ms" "$(ms "${W_P99[members]}")" "$r_members"
    summary_add "/chat/queryGroup (${W_LABEL[querygroup]#*\(} p99" "<= $TARGET_QUERY_P99 ms" "$(ms "${W_P99[querygroup]}")" "$r_query"
fi

# ---------------------------------------------------------------------------------------------
# 6-8. Messaging: sendMsg throughput, long-poll delivery, history over 5 million messages

if want messaging; then
    log "seeding friendships: 1000 sendMsg pairs, $BENCH_SYNC_CLIENTS long-poll receivers and their senders"
    psql_chat -At -v prefix="$EXT_PREFIX" -v pair_lo=3001 -v pairs=1000 -v recv_lo=10001 -v send_lo=20001 \
        -v clients="$BENCH_SYNC_CLIENTS" -f "$BENCH_DIR/messaging-seed.sql" >/dev/null

    # 6. sendMsg: 1,000 friend pairs (users 3001-5000), both directions.
    ext_creds 3001 5000 >"$WORK/pairs.txt"
    read -r pair_token _ < <(sed -n 1p "$WORK/pairs.txt")
    read -r _ pair_peer < <(sed -n 2p "$WORK/pairs.txt")
    check_api sendMsg "$pair_token" /chat/sendMsg '"msgId"' \
        --data "destId=$pair_peer&destType=1&msgType=1&content=check&clientMsgId=check-$RUN_ID"
    run_wrk sendmsg "/chat/sendMsg 1:1 (messages/s)" sendmsg "$WORK/pairs.txt" "@RUN@"
    r_send="$(verdict "${W_OK[sendmsg]}" ge "$TARGET_SEND_RATE")"

    # 7. Long-poll delivery. nginx holds a client and an upstream connection per parked sync.
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

    # 8. History: BENCH_HISTORY_MESSAGES rows, most in one conversation (users 6001 and 6002).
    per_other=$(( BENCH_HISTORY_MESSAGES / 5 / 1000 ))
    [ "$per_other" -le 1000 ] || per_other=1000
    log "seeding $BENCH_HISTORY_MESSAGES messages: one conversation of $((BENCH_HISTORY_MESSAGES - 1000 * per_other)), 1000 of $per_other"
    started=$SECONDS
    history="$(psql_chat -At -v prefix="$EXT_PREFIX" -v main_a=6001 -v main_b=6002 -v others_lo=6003 -v others=1000 \
        -v per_other="$per_other" -v total="$BENCH_HISTORY_MESSAGES" -f "$BENCH_DIR/history-seed.sql")"
    HISTORY_SEED_SECONDS=$((SECONDS - started))
    read -r H_CONVERSATION H_PEER H_TMIN H_TMAX H_COUNT <<<"$(kv history "$history")"
    [ -n "${H_COUNT:-}" ] || die "history-seed.sql printed no summary: $history"
    MESSAGES_TOTAL="$(psql_chat -At -c "SELECT count(*) FROM messages")"
    log "seeded in $HISTORY_SEED_SECONDS s (conversation $H_CONVERSATION: $H_COUNT messages; $MESSAGES_TOTAL in the table)"
    settle
    read -r H_TOKEN _ < <(ext_creds 6001 6001)
    check_api getMsgHistory "$H_TOKEN" "/chat/getMsgHistory?destId=$H_PEER&destType=1&size=20&sendTime=$H_TMAX" '"msgId"'
    run_wrk history "/chat/getMsgHistory (size 20)" history "$H_TOKEN" "$H_PEER" "$H_TMIN" "$H_TMAX" 20
    r_history="$(verdict "${W_P99[history]}" le "$TARGET_HISTORY_P99")"
    if [ "${W_ERR[sendmsg]}" -gt 0 ]; then r_send="MISSED (errors)"; fi
    if [ "${W_ERR[history]}" -gt 0 ]; then r_history="MISSED (errors)"; fi

    echo
    echo "Messaging through nginx: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, ${BENCH_DURATION} s each after ${BENCH_WARMUP} s warm-up;"
    echo "$(nproc) CPUs; app: $workers_count workers x ${threads:-8} threads. sendMsg: POST, 1,000 friend pairs, both directions,"
    echo "a new clientMsgId each; getMsgHistory: random sendTime in a conversation of $H_COUNT messages, $MESSAGES_TOTAL rows"
    echo "in the messages table (seeded in $HISTORY_SEED_SECONDS s)."
    echo
    table_header
    table_row sendmsg ">= $TARGET_SEND_RATE messages/s" "$r_send"
    table_row history "p99 <= $TARGET_HISTORY_P99 ms" "$r_history"
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

    summary_add "/chat/sendMsg 1:1 throughput" ">= $TARGET_SEND_RATE messages/s" "$(printf '%.0f' "${W_OK[sendmsg]}") messages/s" "$r_send"
    summary_add "/chat/getMsgHistory ($(awk -v n="$MESSAGES_TOTAL" 'BEGIN { printf "%.1fM", n / 1e6 }') rows) p99" "<= $TARGET_HISTORY_P99 ms" "$(ms "${W_P99[history]}")" "$r_history"
    summary_add "long-poll: $BENCH_SYNC_CLIENTS clients parked" "all" "${LP[parked]}" "$r_parked"
    summary_add "long-poll: worker threads unchanged" "unchanged" "${LP[threads_before]} -> ${LP[threads_parked]} -> ${LP[threads_sending]}" "$r_threads"
    summary_add "long-poll: workers' RSS while parked" "< $TARGET_SYNC_RSS_MIB MiB" "$rss_parked_mib MiB" "$r_rss"
    summary_add "long-poll: delivered, once each" "all" "${LP[delivered]} / ${LP[sent]}" "$r_delivered"
    summary_add "long-poll: delivery p99 at $BENCH_SYNC_RATE messages/s" "<= $TARGET_DELIVERY_P99 ms" "$(ms "${LP[p99_ms]}")" "$r_latency"
fi

# ---------------------------------------------------------------------------------------------
# Summary

if [ "${#SUMMARY[@]}" -gt 0 ]; then
    met=0
    echo
    echo "Summary of the targets ($(nproc) CPUs, $workers_count workers x ${threads:-8} threads, wrk -c$BENCH_CONNECTIONS):"
    summary_line() { printf '  %-46s %-20s %-26s %s\n' "$@"; }
    summary_line "what" "target" "measured" "result"
    summary_line "----------------------------------------------" "--------------------" "--------------------------" "------"
    for row in "${SUMMARY[@]}"; do
        IFS='|' read -r what target measured result <<<"$row"
        summary_line "$what" "$target" "$measured" "$result"
        if [ "$result" = "ok" ]; then met=$((met + 1)); fi
    done
    echo "  $met of ${#SUMMARY[@]} met."
    echo
    # The same rows as a file, for comparing runs (old and new binaries alternated).
    mkdir -p "$(dirname "$BENCH_RESULTS")"
    {
        printf 'commit\tdate\tcpus\twhat\ttarget\tmeasured\tresult\n'
        commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)"
        for row in "${SUMMARY[@]}"; do
            IFS='|' read -r what target measured result <<<"$row"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$commit" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" \
                "$what" "$target" "$measured" "$result"
        done
    } >"$BENCH_RESULTS"
    echo "Results: $BENCH_RESULTS"
fi
echo "Load average (1, 5, 15 min): $LOAD_AT_START at the start, $(load_avg) at the end. Other work on this machine"
seeding=""
if [ -n "${SOCIAL_SEED_SECONDS:-}" ]; then seeding="social graph $SOCIAL_SEED_SECONDS s"; fi
if [ -n "${HISTORY_SEED_SECONDS:-}" ]; then seeding="${seeding:+$seeding, }message history $HISTORY_SEED_SECONDS s"; fi
echo "shares its CPUs: figures are noisy. Total $((SECONDS - BENCH_STARTED)) s before cleanup${seeding:+ (seeding: $seeding)}."
exit 0
