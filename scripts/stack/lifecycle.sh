# scripts/stack.sh: the commands that run the whole stack (up, down, foreground, status, env).
# Sourced, not run.

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

cmd_down() {
    nginx_stop
    app_stop
    pg_stop
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

