# scripts/stack.sh: deps (Debian packages) and build. Sourced, not run.

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

