# scripts/stack.sh: the app (secrets, configuration from deploy/local/chat-fcgi.conf.in,
# migrations, the supervisor: start, stop, reload). Sourced, not run.

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

# up: (d) app configuration

write_app_config() {
    mkdir -p "$RUN_DIR" "$LOG_DIR" "$UPLOADS_DIR"
    chmod 0755 "$RUN_DIR" "$UPLOADS_DIR"
    local SOCKET_GROUP_LINE=""
    if is_root; then SOCKET_GROUP_LINE="socket_group = $NGINX_USER"; fi
    render_template "$ROOT/deploy/local/chat-fcgi.conf.in" "$CONF.tmp"
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

cmd_reload() {
    local pid
    pid="$(app_pid)" || die "chat-fcgi is not running"
    log "chat-fcgi: SIGHUP (pid $pid)"
    kill -HUP "$pid"
}

