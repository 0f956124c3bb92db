#!/usr/bin/env bash
# make fuzz / the last step of make test: schemathesis (pinned in scripts/fuzz/requirements.txt)
# runs every check against docs/openapi.yaml on a RUNNING stack, as a freshly registered user.
#
#   scripts/fuzz.sh [extra schemathesis run options]
#
# The stack: the CHAT_TEST_* variables as `scripts/stack.sh env` prints them; when
# CHAT_TEST_BASE_URL is not set, this script evaluates `scripts/stack.sh env` itself (so STACK_DIR,
# HTTP_PORT … select the stack, as for stack.sh). It talks to CHAT_TEST_BASE_URL, the plain-HTTP
# port, where nginx's per-address rate limits are off.
#
# Environment: FUZZ_SEED (default 20261203), FUZZ_MAX_EXAMPLES (per operation and phase, default
# 25), FUZZ_WORKERS (default 2), FUZZ_VENV (default .build/fuzz-venv), FUZZ_REPORT_DIR (default
# .build/fuzz-report: the output, JUnit XML and NDJSON events of the last run).
# Exit status: schemathesis's (0 when it found nothing). The last line printed is
# `fuzz: N passed, N failed` (test cases; those of a failing case count as failed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/scripts/fuzz"
VENV="${FUZZ_VENV:-$ROOT/.build/fuzz-venv}"
SEED="${FUZZ_SEED:-20261203}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}"
fuzz_workers="${FUZZ_WORKERS:-2}"
REPORT_DIR="${FUZZ_REPORT_DIR:-$ROOT/.build/fuzz-report}"

log() { printf '[fuzz] %s\n' "$*" >&2; }

if [ -z "${CHAT_TEST_BASE_URL:-}" ]; then
    eval "$("$ROOT/scripts/stack.sh" env)"
fi
: "${CHAT_TEST_SMS_OUTBOX:?CHAT_TEST_SMS_OUTBOX is not set (scripts/stack.sh env prints it)}"

# The virtualenv, (re)made when missing or when the pinned requirements changed.
REQUIREMENTS="$FUZZ_DIR/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/schemathesis" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    command -v python3 >/dev/null 2>&1 || { log "python3 is missing (apt-get install python3 python3-venv)"; exit 1; }
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        log "installing python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >&2
    fi
    log "creating $VENV (schemathesis from PyPI)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
    printf '%s\n' "$want" >"$STAMP"
fi

if ! curl -fsS --max-time 5 -o /dev/null "$CHAT_TEST_BASE_URL/getVersion"; then
    log "no answer from $CHAT_TEST_BASE_URL/getVersion: is the stack up?"
    exit 1
fi

# A user of its own: register (code from the SMS outbox), log in, upload an avatar file.
read -r FUZZ_TOKEN FUZZ_USER_ID FUZZ_UPLOAD_URL < <("$VENV/bin/python" "$FUZZ_DIR/login.py")
[ -n "${FUZZ_UPLOAD_URL:-}" ] || { log "could not register the fuzz user"; exit 1; }
export FUZZ_TOKEN FUZZ_UPLOAD_URL FUZZ_HOOKS="$FUZZ_DIR/hooks.py"
log "user $FUZZ_USER_ID; seed $SEED, at most $MAX_EXAMPLES examples per operation, $fuzz_workers workers"

mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR"/junit.xml "$REPORT_DIR"/events.ndjson "$REPORT_DIR"/output.txt
start=$SECONDS
set +e
"$VENV/bin/schemathesis" --config-file "$FUZZ_DIR/schemathesis.toml" run "$ROOT/docs/openapi.yaml" \
    --url "$CHAT_TEST_BASE_URL" --seed "$SEED" --max-examples "$MAX_EXAMPLES" \
    --workers "$fuzz_workers" --generation-database none --no-color \
    --report junit,ndjson --report-junit-path "$REPORT_DIR/junit.xml" \
    --report-ndjson-path "$REPORT_DIR/events.ndjson" "$@" 2>&1 | tee "$REPORT_DIR/output.txt"
status=${PIPESTATUS[0]}
set -e

# The summary line, from schemathesis's own "Test cases:" count.
counts="$(grep -A1 '^Test cases:' "$REPORT_DIR/output.txt" | tail -n 1 || true)"
generated="$(sed -n 's/^ *\([0-9]*\) generated.*/\1/p' <<<"$counts")"
passed="$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$counts")"
# With failures the line reads "N generated, N found M unique failures, K skipped" and names no passes.
found="$(sed -n 's/.* found \([0-9]*\) unique failure.*/\1/p' <<<"$counts")"
skipped="$(sed -n 's/.* \([0-9]*\) skipped.*/\1/p' <<<"$counts")"
if [ -z "$passed" ] && [ -n "$found" ] && [ -n "$generated" ]; then
    passed=$(( generated - found - ${skipped:-0} ))
    generated=$(( generated - ${skipped:-0} ))
fi
log "schemathesis exited with $status after $((SECONDS - start)) s"
if [ -n "$generated" ]; then
    failed=$(( generated - ${passed:-0} ))
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # an error outside the cases
    printf 'fuzz: %s passed, %s failed\n' "${passed:-0}" "$failed"
else
    printf 'fuzz: 0 passed, 1 failed\n'   # schemathesis did not get to run its tests
fi
exit "$status"
