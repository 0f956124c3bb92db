#!/usr/bin/env bash
# Local stack manager: PostgreSQL + chat-fcgi (FastCGI supervisor) + nginx, all under $STACK_DIR.
#
#   scripts/stack.sh deps        install the Debian packages that are missing (apt-get)
#   scripts/stack.sh build       swift build -c release  -> .build/release/chat-fcgi
#   scripts/stack.sh up          start (or refresh) everything; idempotent
#   scripts/stack.sh down        stop everything that runs; tolerant of parts not running
#   scripts/stack.sh foreground  up, then wait; Ctrl-C (or the app dying) runs down (make run)
#   scripts/stack.sh pg-restart  restart PostgreSQL only (pg_ctl restart -m fast)
#   scripts/stack.sh reload      SIGHUP to the chat-fcgi supervisor (graceful reload)
#   scripts/stack.sh status      what runs (exit 1 when a part is down)
#   scripts/stack.sh env         the export lines for this stack:  eval "$(scripts/stack.sh env)"
#
# Environment (defaults): STACK_DIR ($ROOT/.data), HTTP_PORT (8080), HTTPS_PORT (8443),
# PG_PORT (55432), WORKERS (0 = one per core), THREADS (2 x cores), NGINX_WORKERS (1 on up to
# 3 cores, else cores / 4; deploy/nginx.conf says why),
# NGINX_KEEPALIVE (derived, see render_nginx), CHAT_BIN ($ROOT/.build/release/chat-fcgi),
# HTTP_RATE_LIMIT (off: the plain-HTTP port skips nginx's per-address limits so that test suites
# can register many users; the HTTPS port always has them, as in production),
# STACK_EXTRA_CONFIG (lines appended to the generated chat-fcgi.conf), UPLOAD_MAX_MIB (empty: the
# production limit of /chat/doUploads, 200 MiB by API.md §9; a number raises it, in nginx and in
# the app, for this stack only: make bench's throwaway stack takes its 1 GiB upload this way).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One file per job; settings.sh first (the others use its paths and helpers).
for part in settings deps postgres app nginx lifecycle; do
    # shellcheck source=/dev/null
    source "$ROOT/scripts/stack/$part.sh"
done

usage() {
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    deps)       cmd_deps ;;
    build)      cmd_build ;;
    up)         cmd_up ;;
    down)       cmd_down ;;
    foreground) cmd_foreground ;;
    pg-restart) cmd_pg_restart ;;
    reload)     cmd_reload ;;
    status)     cmd_status ;;
    env)        cmd_env ;;
    *)          usage ;;
esac
