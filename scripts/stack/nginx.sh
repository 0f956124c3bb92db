# scripts/stack.sh: nginx (configuration from deploy/local/nginx.conf.in and deploy/nginx*.conf,
# the self-signed certificate, start, stop). Sourced, not run.

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
    local SHARED="$shared" LOCATIONS="$locations" USER_LINE="$user_line" KEEPALIVE="$keepalive" APP_WORKERS="$app_workers"
    render_template "$ROOT/deploy/local/nginx.conf.in" "$NGX_CONF.tmp"
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

nginx_stop() {
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

