# scripts/stack.sh: PostgreSQL (initdb, settings from deploy/local/postgresql.conf.in, role and
# database, stop, restart). Sourced, not run.


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
    render_template "$ROOT/deploy/local/postgresql.conf.in" "$conf.tmp"
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


pg_stop() {
    if pg_running; then
        log "postgres: stopping"
        as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null \
            || log "warning: pg_ctl stop failed"
    fi
}

cmd_pg_restart() {
    pg_running || die "PostgreSQL is not running (scripts/stack.sh up)"
    log "postgres: restart -m fast"
    # pg_ctl restart has no -l: its output (and the new postmaster's) goes to the log file.
    as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -w -t 60 restart </dev/null >>"$PG_LOG" 2>&1 \
        || { tail -n 50 "$PG_LOG" >&2; die "PostgreSQL restart failed"; }
}

