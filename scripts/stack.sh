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
STACK_DIR="${STACK_DIR:-$ROOT/.data}"
HTTP_PORT="${HTTP_PORT:-8080}"
HTTPS_PORT="${HTTPS_PORT:-8443}"
PG_PORT="${PG_PORT:-55432}"
WORKERS="${WORKERS:-0}"
# Request threads per worker. The binary's default is 8; this stack runs PostgreSQL, nginx and the
# app on the same cores, where fewer threads (and so fewer PostgreSQL backends competing for
# them) measured better: on 2 cores, 4 threads per worker gave getUserById 14,100 req/s with p99
# 5.3 ms against 11,900 and 8.2 ms with 8 (make bench). Hence 2 per core.
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

# ---------------------------------------------------------------------------------------------
# deps

DEB_PACKAGES=(libfcgi-dev libpq-dev libssl-dev libcrypt-dev postgresql postgresql-contrib
              openssl wrk curl procps iproute2 ca-certificates)
APT_STAMP=/var/lib/apt/periodic/chat-fcgi-update-success-stamp

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

cmd_deps() {
    local missing=() p
    for p in "${DEB_PACKAGES[@]}"; do
        deb_installed "$p" || missing+=("$p")
    done
    if ! command -v nginx >/dev/null 2>&1 && ! deb_installed nginx && ! deb_installed nginx-light; then
        missing+=(nginx-light)
    fi
    if ! command -v swift >/dev/null 2>&1; then
        log "warning: swift is not on PATH (expected under /opt/swift/usr/bin); Debian has no package for it"
    fi
    if [ "${#missing[@]}" -eq 0 ]; then
        log "deps: all packages present"
        return 0
    fi
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 || die "deps: need root to install: ${missing[*]}"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update at most once a day (our own stamp, or apt's periodic one).
    if [ -z "$(find "$APT_STAMP" /var/lib/apt/periodic/update-success-stamp -maxdepth 0 -mmin -1440 2>/dev/null)" ]; then
        log "deps: apt-get update"
        "${sudo[@]}" apt-get update -q
        "${sudo[@]}" mkdir -p "$(dirname "$APT_STAMP")"
        "${sudo[@]}" touch "$APT_STAMP"
    fi
    # nginx-light is the small flavour on older Debian and a transitional package for nginx on 12.
    if [[ " ${missing[*]} " == *" nginx-light "* ]] && ! apt-cache show nginx-light >/dev/null 2>&1; then
        missing=("${missing[@]/nginx-light/nginx}")
    fi
    log "deps: installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# build

cmd_build() {
    command -v swift >/dev/null 2>&1 || die "swift not found (expected /opt/swift/usr/bin/swift)"
    (cd "$ROOT" && swift build -c release)
    [ -x "$ROOT/.build/release/chat-fcgi" ] || die "build finished but .build/release/chat-fcgi is missing"
    log "built $ROOT/.build/release/chat-fcgi"
}

# ---------------------------------------------------------------------------------------------
# up: (a) PostgreSQL

pg_up() {
    local bindir
    bindir="$(pg_bindir)"
    mkdir -p "$STACK_DIR" "$PG_DIR" "$PG_SOCK"
    chmod 0755 "$STACK_DIR"            # traversable for the postgres user and nginx's workers
    if is_root; then
        chown postgres:postgres "$PG_DIR" "$PG_SOCK"
        if ! runuser -u postgres -- test -w "$PG_DIR"; then
            die "the postgres user cannot reach $PG_DIR: every parent folder of STACK_DIR needs o+x (or pick another STACK_DIR)"
        fi
    fi
    chmod 0700 "$PG_DIR"
    chmod 0750 "$PG_SOCK"

    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        log "postgres: initdb $PGDATA"
        if ! as_pg "$bindir/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
                --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1; then
            cat "$PG_DIR/initdb.log" >&2
            die "initdb failed"
        fi
    fi

    # Our settings live in their own file, rewritten on every `up` (ports may change).
    local conf="$PGDATA/chat-stack.conf"
    cat >"$conf.tmp" <<EOF
# Written by scripts/stack.sh up: edits are overwritten. Settings for a 2-core development box.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
unix_socket_permissions = 0770
max_connections = 200
shared_buffers = 256MB
effective_cache_size = 2GB
work_mem = 8MB
maintenance_work_mem = 128MB
wal_buffers = 16MB
min_wal_size = 256MB
max_wal_size = 2GB
checkpoint_completion_target = 0.9
random_page_cost = 1.1
effective_io_concurrency = 200
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
fsync = on
full_page_writes = on
# LOCAL STACK ONLY: a crash may lose the last few hundred milliseconds of commits (never corrupts
# anything). Production keeps synchronous_commit = on: payments must not vanish.
synchronous_commit = off
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1000
log_lock_waits = on
EOF
    mv "$conf.tmp" "$conf"
    if is_root; then chown postgres:postgres "$conf"; fi
    if ! grep -q "^include_if_exists = 'chat-stack.conf'" "$PGDATA/postgresql.conf"; then
        printf "\n# scripts/stack.sh\ninclude_if_exists = 'chat-stack.conf'\n" >>"$PGDATA/postgresql.conf"
    fi

    if pg_running; then
        log "postgres: already running"
    else
        log "postgres: starting on $PG_SOCK and 127.0.0.1:$PG_PORT"
        if ! as_pg "$bindir/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 start >/dev/null; then
            tail -n 50 "$PG_LOG" >&2 || true
            die "PostgreSQL did not start"
        fi
    fi

    # Role and database (the chat role owns its database, so migrations may create the trusted
    # extension pg_trgm themselves). Its password is for TCP clients; the app uses the socket.
    if [ ! -s "$PG_PASSWORD_FILE" ]; then
        (umask 077 && openssl rand -hex 16 >"$PG_PASSWORD_FILE")
    fi
    chmod 600 "$PG_PASSWORD_FILE"
    local password
    password="$(tr -dc '0-9a-f' <"$PG_PASSWORD_FILE")"
    psql_admin() {
        as_pg "$bindir/psql" -X -q -A -t -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
            -v ON_ERROR_STOP=1 "$@"
    }
    if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'chat'")" != "1" ]; then
        log "postgres: creating role chat"
        psql_admin -c "CREATE ROLE chat LOGIN PASSWORD '$password'"
    fi
    if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'chat'")" != "1" ]; then
        log "postgres: creating database chat"
        psql_admin -c "CREATE DATABASE chat OWNER chat"
    fi
}

# up: (b) secrets, (c) certificate

make_secret() {
    local file="$1"
    if [ ! -s "$file" ]; then
        (umask 077 && openssl rand -hex 32 >"$file.tmp")
        mv "$file.tmp" "$file"
        log "secret: created $file"
    fi
    chmod 600 "$file"
}

make_cert() {
    mkdir -p "$TLS_DIR"
    chmod 0755 "$TLS_DIR"
    if [ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ]; then return 0; fi
    log "tls: self-signed certificate for localhost / 127.0.0.1 in $TLS_DIR"
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
        -days 825 -keyout "$TLS_KEY.tmp" -out "$TLS_CERT.tmp" -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -addext "extendedKeyUsage=serverAuth" 2>/dev/null)
    mv "$TLS_KEY.tmp" "$TLS_KEY"
    mv "$TLS_CERT.tmp" "$TLS_CERT"
    chmod 600 "$TLS_KEY"
    chmod 644 "$TLS_CERT"
}

# up: (d) app configuration

write_app_config() {
    mkdir -p "$RUN_DIR" "$LOG_DIR" "$UPLOADS_DIR"
    chmod 0755 "$RUN_DIR" "$UPLOADS_DIR"
    cat >"$CONF.tmp" <<EOF
# Written by scripts/stack.sh up for the local stack: edits are overwritten (use
# STACK_EXTRA_CONFIG, or CHAT_* environment variables). Keys: deploy/chat-fcgi.conf.example.
listen = $APP_SOCK
socket_mode = 0660
$(if is_root; then echo "socket_group = $NGINX_USER"; fi)
workers = $WORKERS
threads = $THREADS
pid_file = $APP_PID_FILE
database = host=$PG_SOCK port=$PG_PORT dbname=chat user=chat
sql_dir = $ROOT/sql
uploads_dir = $UPLOADS_DIR
uploads_url = /uploads
sms_sender = outbox
sms_outbox = $SMS_OUTBOX
secret_key_file = $STACK_DIR/secret.key
payment_secret_file = $STACK_DIR/payment.key
log_level = info
version.android = 1.0.0
version.android.url = https://127.0.0.1:$HTTPS_PORT/uploads/app/chat-1.0.0.apk
version.android.force = 0
version.android.note = local stack
version.ios = 1.0.0
version.ios.url = https://apps.apple.com/app/id0000000000
version.ios.force = 0
version.ios.note = local stack
# Abuse limits (deploy/chat-fcgi.conf.example): short windows so that tests need no long waits.
# The local client (127.0.0.1, every test) skips the per-address limits; the tests of those limits
# connect from other loopback addresses (127.0.0.2 and up).
sms_per_number_interval_s = 5
rate_limit.exempt_addresses = 127.0.0.1
rate_limit.query_user.per_address = 5/60
rate_limit.register.per_address = 5/60
rate_limit.find_pwd.per_address = 5/60
rate_limit.get_validate_num.per_address = 5/60
EOF
    if [ -n "$UPLOAD_MAX_MIB" ]; then
        printf '# UPLOAD_MAX_MIB (this stack only)\nmax_file_bytes = %d\n' $((UPLOAD_MAX_MIB * 1048576)) >>"$CONF.tmp"
    fi
    if [ -n "$STACK_EXTRA_CONFIG" ]; then
        printf '# STACK_EXTRA_CONFIG\n%s\n' "$STACK_EXTRA_CONFIG" >>"$CONF.tmp"
    fi
    mv "$CONF.tmp" "$CONF"
}

need_bin() {
    [ -x "$CHAT_BIN" ] || die "$CHAT_BIN is missing: run scripts/stack.sh build (or set CHAT_BIN)"
}

# up: (e) migrations

run_migrations() {
    need_bin
    log "migrate: $CHAT_BIN migrate --config $CONF"
    if ! (cd "$ROOT" && "$CHAT_BIN" migrate --config "$CONF") 2>&1 | tee -a "$APP_LOG" >&2; then
        die "migrations failed (see $APP_LOG)"
    fi
}

# up: (f) the supervisor

app_up() {
    need_bin
    local pid
    if pid="$(app_pid)"; then
        if [ "$CHAT_BIN" -nt "$LAUNCH_PID_FILE" ]; then
            # Rebuilt since it started: a reload would renew only the workers; restart so that
            # the supervisor itself runs the new build too.
            log "chat-fcgi: $CHAT_BIN is newer than the running supervisor (pid $pid); restarting it"
            app_stop
        else
            # Same binary: a graceful reload picks up a changed configuration.
            log "chat-fcgi: already running (pid $pid); sending SIGHUP (graceful reload)"
            kill -HUP "$pid"
            return 0
        fi
    fi
    rm -f "$APP_SOCK" "$APP_PID_FILE" "$LAUNCH_PID_FILE"
    log "chat-fcgi: starting (log: $APP_LOG)"
    # setsid: its own session, away from the terminal (Ctrl-C in `make run` reaches only the
    # foreground script, which then stops the stack in order). Not nohup: nohup leaves SIGHUP
    # ignored, and the supervisor and its workers would inherit that disposition.
    ( cd "$ROOT" && exec setsid "$CHAT_BIN" serve --config "$CONF" </dev/null >>"$APP_LOG" 2>&1 ) &
    pid=$!
    printf '%s\n' "$pid" >"$LAUNCH_PID_FILE"
    local tenths=300
    until [ -S "$APP_SOCK" ]; do
        if ! pid_running "$pid"; then
            print_logs
            die "chat-fcgi exited during startup"
        fi
        [ "$tenths" -gt 0 ] || { print_logs; die "chat-fcgi did not create $APP_SOCK within 30 s"; }
        tenths=$((tenths - 1))
        sleep 0.1
    done
    log "chat-fcgi: listening on $APP_SOCK (pid $pid)"
}

# up: (g) nginx

render_nginx() {
    mkdir -p "$NGX_DIR/logs" "$NGX_DIR/tmp/body" "$NGX_DIR/tmp/fastcgi" "$NGX_DIR/tmp/proxy" \
             "$NGX_DIR/tmp/uwsgi" "$NGX_DIR/tmp/scgi"
    local shared app_workers keepalive user_line=""
    shared="$(sed -n '/BEGIN chat-http-shared/,/END chat-http-shared/p' "$ROOT/deploy/nginx.conf")"
    [[ "$shared" == *"log_format chat"* && "$shared" == *"END chat-http-shared"* ]] \
        || die "deploy/nginx.conf lacks its BEGIN/END chat-http-shared block"
    # Keepalive sizing rule (see deploy/nginx.conf): nginx workers x keepalive = twice the app's
    # threads. Reference box: 2 app workers x 4 threads, 1 nginx worker -> keepalive 16.
    app_workers="$WORKERS"
    if [ "$app_workers" -eq 0 ]; then app_workers="$(nproc)"; fi
    keepalive="${NGINX_KEEPALIVE:-$(( 2 * app_workers * THREADS / NGINX_WORKERS ))}"
    if [ "$keepalive" -lt 1 ]; then keepalive=1; fi
    # As in production, nginx's workers run unprivileged: they reach the app through its 0660
    # socket by group, read the uploads (0644 files in 0755 folders) and own their temp folders.
    if is_root; then
        user_line="user $NGINX_USER $NGINX_USER;"
        chown -R "$NGINX_USER:$NGINX_USER" "$NGX_DIR/tmp"
    fi
    # The production locations, or a copy with a larger doUploads limit (UPLOAD_MAX_MIB).
    local locations="$ROOT/deploy/nginx-chat.conf"
    if [ -n "$UPLOAD_MAX_MIB" ]; then
        locations="$NGX_DIR/nginx-chat.conf"
        sed "/^location = \/chat\/doUploads /,/^}/ s/client_max_body_size [^;]*;/client_max_body_size ${UPLOAD_MAX_MIB}m;/" \
            "$ROOT/deploy/nginx-chat.conf" >"$locations.tmp"
        grep -q "client_max_body_size ${UPLOAD_MAX_MIB}m;" "$locations.tmp" \
            || die "could not raise the doUploads limit in a copy of deploy/nginx-chat.conf"
        mv "$locations.tmp" "$locations"
    else
        rm -f "$NGX_DIR/nginx-chat.conf"
    fi
    cat >"$NGX_CONF.tmp" <<EOF
# Written by scripts/stack.sh up: edits are overwritten. The app's locations are the production
# ones: $locations (a copy with a larger doUploads limit when UPLOAD_MAX_MIB is set);
# the http-level block is copied from deploy/nginx.conf.
$user_line
worker_processes $NGINX_WORKERS;
# Parked long-polls (/chat/sync) hold a client and an upstream connection each.
worker_rlimit_nofile 65536;
pid $NGX_PID_FILE;
error_log $NGX_ERROR_LOG error;   # as in production: warn-level lines carry query strings

events {
    worker_connections 8192;
}

http {
$shared

    access_log $NGX_ACCESS_LOG chat buffer=64k flush=1s;
    client_body_temp_path $NGX_DIR/tmp/body;
    fastcgi_temp_path $NGX_DIR/tmp/fastcgi;
    proxy_temp_path $NGX_DIR/tmp/proxy;
    uwsgi_temp_path $NGX_DIR/tmp/uwsgi;
    scgi_temp_path $NGX_DIR/tmp/scgi;

    # $NGINX_WORKERS nginx workers x keepalive $keepalive = twice $app_workers app workers x $THREADS threads.
    upstream chat_fcgi {
        server unix:$APP_SOCK;
        keepalive $keepalive;
        keepalive_timeout 60s;
    }

    # Plain HTTP serves the app directly (no redirect locally).
    server {
        listen 127.0.0.1:$HTTP_PORT;
        server_name localhost;
        set \$chat_uploads_dir $UPLOADS_DIR;
        set \$chat_ratelimit $HTTP_RATE_LIMIT;
        include $locations;
    }

    server {
        listen 127.0.0.1:$HTTPS_PORT ssl http2;
        server_name localhost;
        ssl_certificate $TLS_CERT;
        ssl_certificate_key $TLS_KEY;
        set \$chat_uploads_dir $UPLOADS_DIR;
        set \$chat_ratelimit on;
        include $locations;
    }
}
EOF
    if ! nginx -q -t -p "$NGX_DIR/" -c "$NGX_CONF.tmp" 2>"$NGX_DIR/logs/test.log"; then
        cat "$NGX_DIR/logs/test.log" >&2
        die "the rendered nginx configuration does not pass nginx -t ($NGX_CONF.tmp)"
    fi
    mv "$NGX_CONF.tmp" "$NGX_CONF"
}

nginx_up() {
    command -v nginx >/dev/null 2>&1 || die "nginx not found (run: scripts/stack.sh deps)"
    render_nginx
    local pid
    if pid="$(nginx_pid)"; then
        log "nginx: already running (pid $pid); reloading its configuration"
        kill -HUP "$pid"
        return 0
    fi
    log "nginx: starting on 127.0.0.1:$HTTP_PORT (http) and 127.0.0.1:$HTTPS_PORT (https)"
    if ! nginx -p "$NGX_DIR/" -c "$NGX_CONF" </dev/null >/dev/null 2>"$NGX_DIR/logs/startup.log"; then
        cat "$NGX_DIR/logs/startup.log" >&2
        die "nginx did not start"
    fi
    local tenths=100
    until nginx_pid >/dev/null; do
        [ "$tenths" -gt 0 ] || die "nginx started but wrote no pid file ($NGX_PID_FILE)"
        tenths=$((tenths - 1))
        sleep 0.1
    done
}

# up: (h) readiness

wait_ready() {
    local url="http://127.0.0.1:$HTTP_PORT/getVersion" deadline=$((SECONDS + 30))
    until curl -fsS --max-time 5 -o /dev/null "$url" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            curl -sS --max-time 5 "$url" >&2 || true
            print_logs
            die "no answer from $url within 30 s"
        fi
        sleep 0.2
    done
}

cmd_up() {
    pg_up
    make_secret "$STACK_DIR/secret.key"
    make_secret "$STACK_DIR/payment.key"
    make_cert
    write_app_config
    run_migrations
    app_up
    nginx_up
    wait_ready
    cat <<EOF
chat backend is up:
  http    http://127.0.0.1:$HTTP_PORT/getVersion   (nginx per-address rate limits: $HTTP_RATE_LIMIT)
  https   https://127.0.0.1:$HTTPS_PORT/getVersion  (self-signed: curl --cacert $TLS_CERT)
  uploads http://127.0.0.1:$HTTP_PORT/uploads/
  config  $CONF
  logs    $APP_LOG  $NGX_ACCESS_LOG  $NGX_ERROR_LOG  $PG_LOG
  sms     $SMS_OUTBOX
  psql    psql -h $PG_SOCK -p $PG_PORT -U chat chat
EOF
}

# ---------------------------------------------------------------------------------------------
# down

app_stop() {
    local pid
    if pid="$(app_pid)"; then
        log "chat-fcgi: stopping (pid $pid, SIGTERM: graceful)"
        kill -TERM "$pid" 2>/dev/null || true
        # The supervisor waits shutdown_timeout_s (30) + 5 s for its workers; a margin on top.
        if ! wait_gone "$pid" 45; then
            log "chat-fcgi: still running after 45 s; SIGKILL to its process group"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 5 || true
        fi
    fi
    rm -f "$LAUNCH_PID_FILE"
}

cmd_down() {
    local pid
    if pid="$(nginx_pid)"; then
        log "nginx: stopping (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" 15; then
            log "nginx: still running after 15 s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            pkill -KILL -P "$pid" 2>/dev/null || true
        fi
    fi
    app_stop
    if pg_running; then
        log "postgres: stopping"
        as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null \
            || log "warning: pg_ctl stop failed"
    fi
    log "down"
}

# ---------------------------------------------------------------------------------------------
# foreground (make run)

FOREGROUND_STOPPING=0
# Teardown that always runs to the end: not interrupted by a second Ctrl-C, and not killed by
# SIGPIPE or stopped by a failing write when the terminal or the pipe it printed to is gone.
foreground_stop() {
    [ "$FOREGROUND_STOPPING" -eq 0 ] || return 0
    FOREGROUND_STOPPING=1
    set +e
    trap '' PIPE HUP INT TERM
    cmd_down
}

cmd_foreground() {
    local pid
    trap foreground_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    cmd_up
    log "running in the foreground; Ctrl-C stops everything"
    while pid="$(app_pid)"; do
        sleep 1
    done
    log "chat-fcgi is not running any more"
    print_logs
    exit 1
}

# ---------------------------------------------------------------------------------------------
# pg-restart, reload, status, env

cmd_pg_restart() {
    pg_running || die "PostgreSQL is not running (scripts/stack.sh up)"
    log "postgres: restart -m fast"
    # pg_ctl restart has no -l: its output (and the new postmaster's) goes to the log file.
    as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -w -t 60 restart </dev/null >>"$PG_LOG" 2>&1 \
        || { tail -n 50 "$PG_LOG" >&2; die "PostgreSQL restart failed"; }
}

cmd_reload() {
    local pid
    pid="$(app_pid)" || die "chat-fcgi is not running"
    log "chat-fcgi: SIGHUP (pid $pid)"
    kill -HUP "$pid"
}

cmd_status() {
    local ok=0 pid
    if pg_running; then echo "postgres   running ($PGDATA, port $PG_PORT)"; else echo "postgres   stopped"; ok=1; fi
    if pid="$(app_pid)"; then echo "chat-fcgi  running (pid $pid, $APP_SOCK)"; else echo "chat-fcgi  stopped"; ok=1; fi
    if pid="$(nginx_pid)"; then echo "nginx      running (pid $pid, :$HTTP_PORT :$HTTPS_PORT)"; else echo "nginx      stopped"; ok=1; fi
    if curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$HTTP_PORT/getVersion" 2>/dev/null; then
        echo "getVersion ok (http://127.0.0.1:$HTTP_PORT/getVersion)"
    else
        echo "getVersion no answer"; ok=1
    fi
    return "$ok"
}

cmd_env() {
    local name value
    for name in STACK_DIR HTTP_PORT HTTPS_PORT PG_PORT WORKERS THREADS CHAT_BIN; do
        printf 'export %s=%q\n' "$name" "${!name}"
    done
    while IFS='=' read -r name value; do
        printf 'export %s=%q\n' "$name" "$value"
    done <<EOF
PGHOST=$PG_SOCK
PGPORT=$PG_PORT
PGDATABASE=chat
PGUSER=chat
CHAT_TEST_BASE_URL=http://127.0.0.1:$HTTP_PORT
CHAT_TEST_HTTPS_URL=https://127.0.0.1:$HTTPS_PORT
CHAT_TEST_TLS_CERT=$TLS_CERT
CHAT_TEST_STACK_DIR=$STACK_DIR
CHAT_TEST_SMS_OUTBOX=$SMS_OUTBOX
CHAT_TEST_PIDFILE=$APP_PID_FILE
CHAT_TEST_STACK_SCRIPT=$ROOT/scripts/stack.sh
CHAT_TEST_CONFIG=$CONF
CHAT_TEST_BINARY=$CHAT_BIN
CHAT_TEST_UPLOADS_DIR=$UPLOADS_DIR
EOF
}

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
