# Sourced by scripts/test.sh and scripts/bench.sh (throwaway stacks).
# pick_port VAR BASE sets VAR to a random port in [BASE, BASE+999] that no TCP socket uses in any
# state (not only listening ones) and that was not picked already. Bases stay below Linux's
# ephemeral range (32768-60999), where outgoing connections come and go: a port free a moment ago
# there may be some client's source port by the time a server binds it.
CHOSEN_PORTS=" "
pick_port() {
    local var="$1" base="$2" port tries=0
    while :; do
        port=$((base + RANDOM % 1000))
        if [[ "$CHOSEN_PORTS" != *" $port "* ]] && [ -z "$(ss -Htan "sport = :$port")" ]; then
            CHOSEN_PORTS="$CHOSEN_PORTS$port "
            printf -v "$var" '%s' "$port"
            return 0
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || { printf 'no free port near %s\n' "$base" >&2; return 1; }
    done
}
