# scripts/stack.sh: settings, their checks, the stack's paths, and helpers shared by the parts.
# Sourced by scripts/stack.sh, which sets ROOT; not run.

STACK_DIR="${STACK_DIR:-$ROOT/.data}"
HTTP_PORT="${HTTP_PORT:-8080}"
HTTPS_PORT="${HTTPS_PORT:-8443}"
PG_PORT="${PG_PORT:-55432}"
WORKERS="${WORKERS:-0}"
# Request threads per worker. The binary's default is 8; this stack runs PostgreSQL, nginx and the
# app on the same cores, where fewer threads (fewer PostgreSQL backends competing for them)
# measured better (docs/performance.md). Hence 2 per core.
THREADS="${THREADS:-$(( 2 * $(nproc) ))}"
NGINX_WORKERS="${NGINX_WORKERS:-$(( $(nproc) >= 4 ? $(nproc) / 4 : 1 ))}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-}"
CHAT_BIN="${CHAT_BIN:-$ROOT/.build/release/chat-fcgi}"
HTTP_RATE_LIMIT="${HTTP_RATE_LIMIT:-off}"
# The unprivileged user nginx's workers run as when the stack is started by root.
NGINX_USER="${NGINX_USER:-www-data}"
STACK_EXTRA_CONFIG="${STACK_EXTRA_CONFIG:-}"
UPLOAD_MAX_MIB="${UPLOAD_MAX_MIB:-}"

# The toolchain: the one on PATH, else the machine's /opt/swift.
if ! command -v swift >/dev/null 2>&1 && [ -d /opt/swift/usr/bin ]; then PATH="/opt/swift/usr/bin:$PATH"; fi
export PATH

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Validation and derived paths

case "$STACK_DIR" in
    /*) ;;
    *) STACK_DIR="$PWD/$STACK_DIR" ;;
esac
# The path goes unquoted into nginx, PostgreSQL and libpq configuration: keep it plain.
[[ "$STACK_DIR" =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "STACK_DIR must be a plain path (letters, digits, . _ / + -): $STACK_DIR"
STACK_DIR="${STACK_DIR%/}"
for var in HTTP_PORT HTTPS_PORT PG_PORT; do
    val="${!var}"
    if ! [[ "$val" =~ ^[0-9]+$ ]] || [ "$val" -lt 1 ] || [ "$val" -gt 65535 ]; then
        die "$var must be a port number: $val"
    fi
done
[[ "$WORKERS" =~ ^[0-9]+$ ]] || die "WORKERS must be a number: $WORKERS"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive number: $THREADS"
[[ "$NGINX_WORKERS" =~ ^[1-9][0-9]*$ ]] || die "NGINX_WORKERS must be a positive number: $NGINX_WORKERS"
[[ -z "$UPLOAD_MAX_MIB" || "$UPLOAD_MAX_MIB" =~ ^[1-9][0-9]{0,4}$ ]] || die "UPLOAD_MAX_MIB must be a number of MiB: $UPLOAD_MAX_MIB"
[[ -z "$NGINX_KEEPALIVE" || "$NGINX_KEEPALIVE" =~ ^[1-9][0-9]*$ ]] || die "NGINX_KEEPALIVE must be a positive number"
case "$HTTP_RATE_LIMIT" in on|off) ;; *) die "HTTP_RATE_LIMIT must be on or off" ;; esac

PG_DIR="$STACK_DIR/pg"
PGDATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgresql.log"
PG_SOCK="$STACK_DIR/pgsock"
PG_PASSWORD_FILE="$STACK_DIR/pg.password"
RUN_DIR="$STACK_DIR/run"
APP_SOCK="$RUN_DIR/chat.sock"
APP_PID_FILE="$RUN_DIR/chat-fcgi.pid"      # written by chat-fcgi itself (pid_file)
LAUNCH_PID_FILE="$RUN_DIR/serve.pid"       # written by this script (the pid it started)
LOG_DIR="$STACK_DIR/log"
APP_LOG="$LOG_DIR/chat-fcgi.log"
CONF="$STACK_DIR/chat-fcgi.conf"
UPLOADS_DIR="$STACK_DIR/uploads"
SMS_OUTBOX="$STACK_DIR/sms-outbox.jsonl"
TLS_DIR="$STACK_DIR/tls"
TLS_CERT="$TLS_DIR/cert.pem"
TLS_KEY="$TLS_DIR/key.pem"
NGX_DIR="$STACK_DIR/nginx"
NGX_CONF="$NGX_DIR/nginx.conf"
NGX_PID_FILE="$NGX_DIR/nginx.pid"
NGX_ERROR_LOG="$NGX_DIR/logs/error.log"
NGX_ACCESS_LOG="$NGX_DIR/logs/access.log"

# Unix socket paths are limited to 107 bytes.
for sock in "$PG_SOCK/.s.PGSQL.$PG_PORT" "$APP_SOCK"; do
    [ "${#sock}" -le 100 ] || die "socket path too long (${#sock} > 100 bytes): $sock; use a shorter STACK_DIR"
done

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as the postgres user (initdb and postgres refuse to run as root).
as_pg() {
    # From /: the postgres user may not be allowed into the caller's working directory.
    if is_root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then printf '%s\n' "$PG_BINDIR"; return; fi
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] || continue
        if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$best" "$dir" | sort -V | tail -n 1)" = "$dir" ]; then
            best="$dir"
        fi
    done
    [ -n "$best" ] || die "no PostgreSQL server found under /usr/lib/postgresql (run: scripts/stack.sh deps)"
    printf '%s\n' "$best"
}

# pid_alive PID PATTERN: the process runs and its command line contains PATTERN (guards against
# a recycled pid after a reboot or a crash).
pid_alive() {
    local pid="$1" pattern="$2" cmdline
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"$pattern"* ]]
}

read_pid() {
    if [ -s "$1" ]; then head -n 1 "$1" | tr -dc '0-9'; fi
}

# The running supervisor's pid, if any.
app_pid() {
    local f pid
    for f in "$APP_PID_FILE" "$LAUNCH_PID_FILE"; do
        pid="$(read_pid "$f")"
        if [ -n "$pid" ] && pid_alive "$pid" "$CONF"; then printf '%s\n' "$pid"; return 0; fi
    done
    return 1
}

nginx_pid() {
    local pid
    pid="$(read_pid "$NGX_PID_FILE")"
    if [ -n "$pid" ] && pid_alive "$pid" "$NGX_CONF"; then printf '%s\n' "$pid"; return 0; fi
    return 1
}

pg_running() {
    [ -f "$PGDATA/PG_VERSION" ] || return 1
    as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

# The process exists and is not a zombie (an orphan stays a zombie until PID 1 reaps it, which
# some init processes do only now and then).
pid_running() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != "Z" ]
}

# wait_gone PID SECONDS: waits for the process to exit; 1 if it is still there.
wait_gone() {
    local pid="$1" tenths=$(( $2 * 10 ))
    while pid_running "$pid"; do
        [ "$tenths" -gt 0 ] || return 1
        tenths=$((tenths - 1))
        sleep 0.1
    done
}

print_logs() {
    local f
    for f in "$APP_LOG" "$NGX_ERROR_LOG" "$NGX_DIR/logs/startup.log" "$PG_LOG"; do
        if [ -s "$f" ]; then
            printf -- '----- last 50 lines of %s -----\n' "$f" >&2
            tail -n 50 "$f" >&2 || true
        fi
    done
}

# render_template SRC DEST: SRC with every @NAME@ replaced by the value of the shell variable NAME
# (unset: an error). The stack's generated files are templates in deploy/local/.
render_template() {
    local src="$1" dest="$2" name names
    names="$(grep -o '@[A-Z_][A-Z0-9_]*@' "$src" | tr -d '@' | sort -u)"
    for name in $names; do
        [ -n "${!name+set}" ] || die "$src: @$name@ has no value"
        export "$name"
    done
    perl -pe 's/@([A-Z_][A-Z0-9_]*)@/$ENV{$1}/g' "$src" >"$dest"
}
