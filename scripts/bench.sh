#!/usr/bin/env bash
# make bench: throughput and latency through nginx (wrk), the workers' memory around one large
# streamed upload, then the social graph and messaging at realistic sizes, each against a target.
#
# The measurements come in parts, one file each, scripts/bench/parts/<part>.sh (its header says
# what it seeds and measures); BENCH_PARTS picks them, and they run in the order of their
# "# order: N" lines:
#   base       nginx alone (the ceiling), the app's trivial FastCGI route, /getVersion,
#              /chat/getUserById and /chat/ready over BENCH_USERS seeded sessions; the workers' RSS
#              around one doUploads of BENCH_UPLOAD_MIB
#   social     ready of a user with 500 friends and 50 groups, getGroupMember of a 500-member
#              group, queryGroup over BENCH_SEARCH_GROUPS groups
#   messaging  sendMsg 1:1 throughput, long-poll delivery to BENCH_SYNC_CLIENTS parked syncs
#              (scripts/bench/longpoll.py), getMsgHistory among BENCH_HISTORY_MESSAGES messages
# A part seeds its data straight into PostgreSQL (its SQL files beside it in scripts/bench/),
# settles (VACUUM of what it filled, then a CHECKPOINT, so that autovacuum and the seeding's writes
# stay out of the measurements), and declares and runs its wrk measurements as scenarios: the runner
# (scripts/bench/runner.sh) checks that the endpoint answers properly (a wrong answer stops the run),
# runs a warm-up and the measured wrk run (scripts/bench/wrk.lua), judges the figures against the
# scenario's target and writes them to the results file. Each part prints a table with the targets
# next to the figures; a summary of all targets with the machine's load average ends the run (other
# work on the machine makes figures noisy). A missed target does not fail the run.
#
# Adding a measurement to a part: declare it and run it, e.g.
#     scenario history label="/chat/getMsgHistory (size 20)" creds="$WORK/history.txt" \
#         path="/chat/getMsgHistory?destId=$PEER&destType=1&size=20&sendTime={time}" \
#         time="$TMIN-$TMAX" expect='"msgId"' target="p99 <= 10 ms"
#     run_scenario history
# and add its key to the part's scenario_table (the fields: scripts/bench/runner.sh). Adding a part:
# a new file scripts/bench/parts/<name>.sh (BENCH_PARTS then accepts <name>) with an "# order: N"
# line, its seed SQL beside it; users with sessions from seed_ext_users, with numbers of its own
# (taken: 1-541 and 1001-2000 social, 3001-8002 and 10001-29999 messaging).
#
# The stack: the running one if `scripts/stack.sh status` finds it (same STACK_DIR / HTTP_PORT /
# HTTPS_PORT / PG_PORT environment as stack.sh; the defaults are `make run`'s), otherwise a
# throwaway stack on free ports, brought up like scripts/test.sh does and torn down afterwards.
# BENCH_FRESH_STACK=1 always uses a throwaway stack. On a running stack everything seeded is
# deleted at the end (scripts/bench/cleanup.sql: bench users, their groups, conversations and
# messages, the 5 million history rows included), and leftovers of an interrupted run at the start.
#
# Environment (defaults): BENCH_PARTS (every part: base,social,messaging), BENCH_USERS (1000),
# BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_DURATION (10), BENCH_WARMUP (2),
# BENCH_UPLOAD_MIB (1024; the throwaway stack raises its doUploads limit to it, UPLOAD_MAX_MIB of
# stack.sh; on a running stack it is capped at that stack's limit, 200 MiB by API.md §6),
# BENCH_SEARCH_GROUPS (100000), BENCH_HISTORY_MESSAGES (5000000), BENCH_SYNC_CLIENTS (2000),
# BENCH_SYNC_RATE (1000), BENCH_SYNC_SECONDS (10), BENCH_SYNC_SENDERS (32), BENCH_KEEP_USERS (0:
# on a running stack, everything seeded is deleted at the end; 1 keeps it until the next run),
# BENCH_RESULTS (.build/bench/results-<UTC time>.tsv: a row per measurement with the commit, the
# result and the raw figures; scripts/bench/compare.sh OLD NEW compares two), CHAT_BIN (as stack.sh).
# The helpers and variables below serve the part files too, which shellcheck does not follow:
# shellcheck disable=SC2317,SC2034
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
BENCH_SEARCH_GROUPS="${BENCH_SEARCH_GROUPS:-100000}"
BENCH_HISTORY_MESSAGES="${BENCH_HISTORY_MESSAGES:-5000000}"
BENCH_SYNC_CLIENTS="${BENCH_SYNC_CLIENTS:-2000}"
BENCH_SYNC_RATE="${BENCH_SYNC_RATE:-1000}"
BENCH_SYNC_SECONDS="${BENCH_SYNC_SECONDS:-10}"
BENCH_SYNC_SENDERS="${BENCH_SYNC_SENDERS:-32}"
# Mobiles of the seeded users: +999 is no country's code, so these never clash with real numbers.
# +99977: the basic part's users; +99978: the users of the other parts (seed_ext_users).
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

# The parts: every scripts/bench/parts/<part>.sh, in the order of their "# order: N" lines.
declare -A PART_ORDER=()
for file in "$BENCH_DIR"/parts/*.sh; do
    [ -f "$file" ] || continue
    order="$(sed -n 's/^# order: *\([0-9][0-9]*\).*/\1/p' "$file" | head -n 1)"
    PART_ORDER[$(basename "$file" .sh)]="${order:-999}"
done
[ "${#PART_ORDER[@]}" -gt 0 ] || die "no parts in $BENCH_DIR/parts"
ALL_PARTS="$(for part in "${!PART_ORDER[@]}"; do echo "${PART_ORDER[$part]} $part"; done | sort -k1,1n -k2 | cut -d' ' -f2 | paste -sd, -)"
BENCH_PARTS="${BENCH_PARTS:-$ALL_PARTS}"
for part in ${BENCH_PARTS//,/ }; do
    [ -n "${PART_ORDER[$part]:-}" ] || die "BENCH_PARTS: unknown part $part (${ALL_PARTS//,/, })"
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
CLEAN_PREFIXES=()

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local status=$? prefix started
    trap - EXIT INT TERM HUP
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    if [ -n "$LONGPOLL_PID" ]; then kill "$LONGPOLL_PID" 2>/dev/null || true; wait "$LONGPOLL_PID" 2>/dev/null || true; fi
    if [ "$OWN_STACK" = "1" ]; then
        log "tearing down the throwaway stack in $STACK_DIR"
        "$STACK" down || log "warning: stack.sh down failed"
        if [[ "$STACK_DIR" == /tmp/chat-bench.* ]]; then rm -rf -- "$STACK_DIR"; fi
    elif [ "$BENCH_KEEP_USERS" != "1" ]; then
        for prefix in "${CLEAN_PREFIXES[@]}"; do
            log "removing what was seeded for the users $prefix… (users, groups, conversations, messages)"
            started=$SECONDS
            psql_chat -v prefix="$prefix" -f "$BENCH_DIR/cleanup.sql" >/dev/null \
                || log "warning: could not remove the bench data (mobiles $prefix…)"
            log "removed in $((SECONDS - started)) s"
        done
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
# Shared helpers (the parts' too)

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

# clean_at_exit PREFIX: on a running stack, remove at the end what was seeded for the users whose
# mobiles start with PREFIX (cleanup.sql), unless BENCH_KEEP_USERS=1.
clean_at_exit() {
    local prefix
    for prefix in "${CLEAN_PREFIXES[@]}"; do [ "$prefix" != "$1" ] || return 0; done
    CLEAN_PREFIXES+=("$1")
}

# seed_ext_users RANGES: seeds the users numbered RANGES ("lo-hi,lo-hi,…") under EXT_PREFIX, each
# with a session (scripts/bench/users-seed.sql), and adds them to EXT_CREDENTIALS ("number token
# user_id" lines, read by ext_creds). Each part takes numbers of its own (see the header). On a
# running stack, the first call removes the leftovers of an interrupted run first.
EXT_CREDENTIALS="$WORK/ext-credentials.txt"
EXT_SEEDED=0
seed_ext_users() {
    local ranges="$1" expected
    if [ "$EXT_SEEDED" != "1" ]; then
        EXT_SEEDED=1
        clean_at_exit "$EXT_PREFIX"
        if [ "$OWN_STACK" != "1" ]; then
            psql_chat -v prefix="$EXT_PREFIX" -f "$BENCH_DIR/cleanup.sql" >/dev/null
        fi
    fi
    log "seeding users with sessions (numbers $ranges)"
    psql_chat -At -F ' ' -v prefix="$EXT_PREFIX" -v salt="$(openssl rand -hex 16)" -v ranges="$ranges" \
        -f "$BENCH_DIR/users-seed.sql" >"$WORK/ext-new.txt"
    expected="$(awk -v r="$ranges" 'BEGIN { n = split(r, a, ","); for (i = 1; i <= n; i++) { split(a[i], b, "-"); t += b[2] - b[1] + 1 } print t }')"
    [ "$(wc -l <"$WORK/ext-new.txt")" -eq "$expected" ] || die "users-seed.sql produced $(wc -l <"$WORK/ext-new.txt") sessions, not $expected"
    cat "$WORK/ext-new.txt" >>"$EXT_CREDENTIALS"
}

# Sessions from seed_ext_users of users LO..HI, as "token user_id" lines.
ext_creds() { awk -v lo="$1" -v hi="$2" '$1 >= lo && $1 <= hi { print $2, $3 }' "$EXT_CREDENTIALS"; }

# kv KEY TEXT: the rest of TEXT's line that starts with KEY.
kv() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }' <<<"$2"; }

# seeding_took WHAT SECONDS: for the last line ("seeding: …").
SEEDING=()
seeding_took() { SEEDING+=("$1 $2 s"); }

# A unique id of this run (wrk.lua's clientMsgIds and other ids that must not repeat).
RUN_ID="$(date +%s)"

# scenario, run_scenario, scenario_table, report, summary_add, result_row, verdict, ms.
# shellcheck source=scripts/bench/runner.sh
source "$BENCH_DIR/runner.sh"

# ---------------------------------------------------------------------------------------------
# The parts

for BENCH_PART in ${ALL_PARTS//,/ }; do
    want "$BENCH_PART" || continue
    log "part $BENCH_PART"
    # shellcheck source=/dev/null
    source "$BENCH_DIR/parts/$BENCH_PART.sh"
done
BENCH_PART=""

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
fi
if [ "$RESULTS_STARTED" = "1" ]; then
    echo "Results: $BENCH_RESULTS (compare two with scripts/bench/compare.sh OLD NEW)"
fi
echo "Load average (1, 5, 15 min): $LOAD_AT_START at the start, $(load_avg) at the end. Other work on this machine"
seeding=""
if [ "${#SEEDING[@]}" -gt 0 ]; then seeding="$(printf '%s, ' "${SEEDING[@]}")"; seeding="${seeding%, }"; fi
echo "shares its CPUs: figures are noisy. Total $((SECONDS - BENCH_STARTED)) s before cleanup${seeding:+ (seeding: $seeding)}."
exit 0
