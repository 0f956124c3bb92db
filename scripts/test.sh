#!/usr/bin/env bash
# make test: deps, release build, test build, a throwaway stack on free ports, swift test, then
# scripts/fuzz.sh (schemathesis against docs/openapi.yaml) on the same stack, teardown. Fails when
# either fails. Arguments are passed to `swift test` (e.g. --filter IntegrationTests).
# FUZZ=0 skips the fuzz run; FUZZ_ONLY=1 (make fuzz) skips the test build and swift test instead.
#
# The tests get (besides STACK_DIR, HTTP_PORT, HTTPS_PORT, PG_PORT, CHAT_BIN, so that they can run
# scripts/stack.sh pg-restart|reload on this very stack):
#   CHAT_TEST_BASE_URL     http://127.0.0.1:$HTTP_PORT   (no nginx per-address rate limits)
#   CHAT_TEST_HTTPS_URL    https://127.0.0.1:$HTTPS_PORT (production's rate limits, self-signed)
#   CHAT_TEST_TLS_CERT     that certificate (PEM), CHAT_TEST_STACK_DIR, CHAT_TEST_SMS_OUTBOX,
#   CHAT_TEST_PIDFILE, CHAT_TEST_STACK_SCRIPT, CHAT_TEST_CONFIG, CHAT_TEST_BINARY,
#   CHAT_TEST_UPLOADS_DIR.
# KEEP_STACK=1 leaves the stack's folder (logs, database files) in place after the run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$ROOT/scripts/stack.sh"
if ! command -v swift >/dev/null 2>&1 && [ -d /opt/swift/usr/bin ]; then export PATH="/opt/swift/usr/bin:$PATH"; fi
cd "$ROOT"

log() { printf '[test] %s\n' "$*" >&2; }

"$STACK" deps
"$STACK" build
FUZZ="${FUZZ:-1}"
FUZZ_ONLY="${FUZZ_ONLY:-0}"
if [ "$FUZZ_ONLY" != 1 ]; then
    log "swift build --build-tests"
    swift build --build-tests
fi

# shellcheck source=scripts/ports.sh
source "$ROOT/scripts/ports.sh"

STACK_DIR="$(mktemp -d /tmp/chat-test.XXXXXX)"
export STACK_DIR
STACK_IS_UP=0

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    log "tearing down the stack in $STACK_DIR"
    "$STACK" down || log "warning: stack.sh down failed"
    if [ "$status" -ne 0 ] && [ "$STACK_IS_UP" = 1 ]; then   # (a failed `up` printed them itself)
        local f
        for f in "$STACK_DIR/log/chat-fcgi.log" "$STACK_DIR/nginx/logs/error.log" "$STACK_DIR/pg/postgresql.log"; do
            if [ -s "$f" ]; then
                printf -- '----- last 80 lines of %s -----\n' "$f" >&2
                tail -n 80 "$f" >&2 || true
            fi
        done
    fi
    if [ "${KEEP_STACK:-0}" = "1" ]; then
        log "KEEP_STACK=1: leaving $STACK_DIR"
    elif [[ "$STACK_DIR" == /tmp/chat-test.* ]]; then
        rm -rf -- "$STACK_DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

pick_port HTTP_PORT 18080
pick_port HTTPS_PORT 18080
pick_port PG_PORT 25000
CHAT_BIN="${CHAT_BIN:-$ROOT/.build/release/chat-fcgi}"
export HTTP_PORT HTTPS_PORT PG_PORT CHAT_BIN

log "stack in $STACK_DIR: http $HTTP_PORT, https $HTTPS_PORT, postgres $PG_PORT"
"$STACK" up
STACK_IS_UP=1

# The CHAT_TEST_* variables, exactly as `stack.sh env` prints them for this stack.
eval "$("$STACK" env)"

status=0
if [ "$FUZZ_ONLY" != 1 ]; then
    log "swift test $*"
    set +e
    swift test "$@"
    status=$?
    set -e
    log "swift test exited with $status"
fi

# After the Swift tests, so that the fuzz user's changes (profile, settings, blocks of made-up ids,
# stored uploads) cannot disturb them; the fuzz run registers a user of its own.
if [ "$FUZZ" != 0 ]; then
    log "scripts/fuzz.sh"
    set +e
    "$ROOT/scripts/fuzz.sh"
    fuzz_status=$?
    set -e
    log "scripts/fuzz.sh exited with $fuzz_status"
    if [ "$status" -eq 0 ]; then status=$fuzz_status; fi
fi
exit "$status"
