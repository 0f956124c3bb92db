# shellcheck shell=bash
# The scenario runner of scripts/bench.sh, sourced by it (it uses bench.sh's log, die, field, ratio,
# load1, BASE, BENCH_DIR, RUN_ID, BENCH_PART, BENCH_RESULTS and the BENCH_* load defaults).
#
# A scenario is one wrk measurement, declared in a part file (scripts/bench/parts/<part>.sh):
#
#   scenario KEY FIELD=VALUE…        declares it (KEY: letters, digits, "_", "-"; unique in a run)
#   run_scenario KEY…                runs them, in order
#   scenario_table [-x KEY]… KEY…    prints their table; -x KEY adds a column of req/s ÷ KEY's req/s
#
# Fields [defaults]:
#   label        what the tables and the summary call it [KEY]
#   method       GET or POST [GET]
#   path         the request's path, with placeholders that wrk.lua replaces in each request:
#                  {id}    the user id of another line of creds
#                  {q}     the next line of the file values, percent-encoded
#                  {time}  an integer uniformly random in time's range (LO .. HI + 1)
#   creds        a file of "token user_id" lines; the requests rotate over them (Authorization:
#                Bearer); - for none [-]
#   values       the file of {q}'s texts, one a line
#   time         the range of {time}: LO-HI
#   lua          wrk.lua's mode: get (the path as above) or sendmsg (POST path: 1:1 text messages
#                over the friend pairs of creds, lines 2i+1 and 2i+2, both directions, a new
#                clientMsgId each) [get]
#   bodies       which answers are read and checked for HTTP 2xx with "code":1: all; warm-up (the
#                warm-up's only, for answers of 150 KB and more: the measured run counts statuses
#                >= 400 and socket errors); none (both runs count statuses >= 400 and socket
#                errors) [all]
#   connections, threads, warmup (s), duration (s)   wrk's load
#                [BENCH_CONNECTIONS, BENCH_THREADS, BENCH_WARMUP, BENCH_DURATION]
#   expect       text that one answer must contain (with HTTP 200) before wrk runs, or the run
#                stops: a fast 401 or 404 measures nothing ["code":1]
#   check        that request's path [path with {id} the second line's user id, {q} the first
#                value, {time} the end of the range]
#   check_data   its POST body, placeholders as in check [none]
#   target       "METRIC OP N [UNIT]", several separated by ";". METRIC: p50 or p99 (ms), req/s,
#                ok/s, or x KEY (req/s ÷ the req/s of scenario KEY, run before); OP: <= or >=;
#                UNIT: how the summary names the figure (default ms, req/s, ok/s, or nothing)
#                [none: measured, printed and written, not judged]
#
# A run: the check, a warm-up of `warmup` s, then `duration` s measured with --latency; req/s, ok/s,
# p50 and p99 from the measured run's BENCH line (wrk.lua); errors from both runs (socket errors,
# and non-2xx answers and other bodies where read, statuses >= 400 where not); the load is the
# 1-minute load average when the measured run started. Each target is judged ("ok", "MISSED",
# "MISSED (errors)" when either run had errors, "-" without a figure), is a row of the summary, and
# the scenario is one row of the results file (result_row).

declare -A S=()      # S[KEY.FIELD]: the declarations
declare -A R=()      # R[KEY.rps|okps|p50|p99|errors|checked|load|result]: the figures
declare -A RESULT_KEYS=()
SUMMARY=()           # "what|target|measured|result" rows of the final summary
RESULTS_STARTED=0

SCENARIO_FIELDS=" label method path creds values time lua bodies connections threads warmup duration expect check check_data target "
TARGET_RE='^[[:space:]]*(p50|p99|req/s|ok/s|x[[:space:]]+[A-Za-z0-9_-]+)[[:space:]]*(<=|>=)[[:space:]]*([0-9]+(\.[0-9]+)?)[[:space:]]*(.*[^[:space:]])?[[:space:]]*$'

# verdict VALUE le|ge LIMIT: "ok" when VALUE <= (ge: >=) LIMIT, "MISSED" when not, "-" without a value.
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "" || v == "-" || tolower(v) ~ /nan/) { print "-"; exit }
        ok = (op == "le") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
        print (ok ? "ok" : "MISSED") }'
}

# ms 12.3456 -> "12.35 ms"
ms() { awk -v v="$1" 'BEGIN { if (v == "" || v == "-" || tolower(v) ~ /nan/) print "-"; else printf "%.2f ms\n", v }'; }

# summary_add WHAT TARGET MEASURED RESULT: a row of the final summary.
summary_add() { SUMMARY+=("$1|$2|$3|$4"); }

# result_row KEY WHAT TARGET MEASURED RESULT [REQ/S OK/S P50 P99 ERRORS LOAD]: a row of the results
# file (BENCH_RESULTS), the raw figures as plain numbers ("-" where there is none). KEY is unique in
# a run, so that two files can be joined on it (scripts/bench/compare.sh).
result_row() {
    local key="$1" commit value
    local -a cols=()
    [ -z "${RESULT_KEYS[$key]:-}" ] || die "results: the key $key is used twice"
    RESULT_KEYS[$key]=1
    shift
    if [ "$RESULTS_STARTED" != 1 ]; then
        mkdir -p "$(dirname "$BENCH_RESULTS")"
        printf 'commit\tdate\tcpus\tpart\tkey\twhat\ttarget\tmeasured\tresult\treq/s\tok/s\tp50_ms\tp99_ms\terrors\tload\n' >"$BENCH_RESULTS"
        RESULTS_STARTED=1
    fi
    commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)"
    for value in "$commit" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "${BENCH_PART:--}" "$key" "$@"; do
        value="${value//$'\t'/ }"
        cols+=("${value//$'\n'/ }")
    done
    while [ "${#cols[@]}" -lt 15 ]; do cols+=("-"); done
    (IFS=$'\t'; printf '%s\n' "${cols[*]}") >>"$BENCH_RESULTS"
}

# report KEY WHAT TARGET MEASURED RESULT [raw figures as result_row]: a measurement that is not a
# scenario (memory, long-poll delivery, …): a summary row and a results row.
report() {
    summary_add "$2" "$3" "$4" "$5"
    result_row "$@"
}

# scenario KEY FIELD=VALUE…: declares a scenario (fields: above).
scenario() {
    local key="$1" arg name target
    shift
    [[ "$key" =~ ^[A-Za-z0-9_-]+$ ]] || die "scenario: bad key '$key'"
    [ -z "${S[$key.label]:-}" ] || die "scenario $key: declared twice"
    S[$key.label]="$key" S[$key.method]=GET S[$key.path]="" S[$key.creds]=- S[$key.values]="" S[$key.time]=""
    S[$key.lua]=get S[$key.bodies]=all S[$key.expect]='"code":1' S[$key.check]="" S[$key.check_data]=""
    S[$key.target]="" S[$key.connections]="$BENCH_CONNECTIONS" S[$key.threads]="$BENCH_THREADS"
    S[$key.warmup]="$BENCH_WARMUP" S[$key.duration]="$BENCH_DURATION"
    for arg; do
        name="${arg%%=*}"
        [[ "$arg" == *=* && "$SCENARIO_FIELDS" == *" $name "* ]] || die "scenario $key: unknown field in '$arg'"
        S[$key.$name]="${arg#*=}"
    done
    [[ "${S[$key.path]}" == /* ]] || die "scenario $key: path must start with /"
    [[ "${S[$key.method]}" =~ ^(GET|POST)$ ]] || die "scenario $key: method must be GET or POST"
    [[ "${S[$key.lua]}" =~ ^(get|sendmsg)$ ]] || die "scenario $key: lua must be get or sendmsg"
    [[ "${S[$key.bodies]}" =~ ^(all|warm-up|none)$ ]] || die "scenario $key: bodies must be all, warm-up or none"
    for name in connections threads warmup duration; do
        [[ "${S[$key.$name]}" =~ ^[1-9][0-9]*$ ]] || die "scenario $key: $name must be a positive number"
    done
    [ -n "${S[$key.expect]}" ] || die "scenario $key: expect is empty"
    if [ "${S[$key.creds]}" != "-" ] && [ ! -s "${S[$key.creds]}" ]; then die "scenario $key: no credentials in ${S[$key.creds]}"; fi
    if [[ "${S[$key.path]}${S[$key.check]}${S[$key.check_data]}" == *"{q}"* ]] && [ ! -s "${S[$key.values]}" ]; then
        die "scenario $key: {q} needs values=FILE"
    fi
    if [[ "${S[$key.path]}${S[$key.check]}${S[$key.check_data]}" == *"{time}"* ]] && ! [[ "${S[$key.time]}" =~ ^[0-9]+-[0-9]+$ ]]; then
        die "scenario $key: {time} needs time=LO-HI"
    fi
    if [ -n "${S[$key.target]}" ]; then
        while IFS= read -r target; do
            [[ "$target" =~ $TARGET_RE ]] || die "scenario $key: cannot read the target '$target' (METRIC <=|>= N [UNIT])"
        done < <(tr ';' '\n' <<<"${S[$key.target]}")
    fi
}

# urlencode TEXT: percent-encodes every byte but letters, digits and -._~
urlencode() {
    local LC_ALL=C text="$1" out="" c i
    for ((i = 0; i < ${#text}; i++)); do
        c="${text:i:1}"
        case "$c" in
            [a-zA-Z0-9._~-]) out+="$c" ;;
            *) printf -v c '%%%02X' "'$c"; out+="${c: -3}" ;;
        esac
    done
    printf '%s' "$out"
}

# check_answer KEY: one request as declared (check, check_data), the first line of creds as the
# session; dies unless it is HTTP 200 with `expect` in the body.
check_answer() {
    local key="$1" creds="${S[$1.creds]}" path data token="" other="" value="" tmax="${S[$1.time]#*-}" out status body
    local -a args=()
    path="${S[$key.check]:-${S[$key.path]}}"
    data="${S[$key.check_data]}"
    if [ "$creds" != "-" ]; then
        read -r token other < <(head -n 1 "$creds")
        if [ "$(wc -l <"$creds")" -gt 1 ]; then read -r _ other < <(sed -n 2p "$creds"); fi
        args+=(-H "Authorization: Bearer $token")
    fi
    if [ -n "${S[$key.values]}" ]; then value="$(urlencode "$(grep -m 1 . "${S[$key.values]}")")"; fi
    path="${path//\{id\}/$other}" path="${path//\{q\}/$value}" path="${path//\{time\}/$tmax}"
    data="${data//\{id\}/$other}" data="${data//\{q\}/$value}" data="${data//\{time\}/$tmax}"
    if [ "${S[$key.method]}" = "POST" ]; then args+=(-X POST --data "$data"); fi
    out="$(curl -sS --max-time 30 -w '\n%{http_code}' "${args[@]}" "$BASE$path")" \
        || die "scenario $key: no answer from $BASE$path"
    status="${out##*$'\n'}"
    body="${out%$'\n'*}"
    [ "$status" = "200" ] || die "scenario $key: HTTP $status from ${S[$key.method]} $path: ${body:0:300}"
    # JSON written by PostgreSQL (the long lists) has spaces around the colons.
    [[ "${body//\" : /\":}" == *"${S[$key.expect]}"* ]] \
        || die "scenario $key: the answer from ${S[$key.method]} $path does not contain ${S[$key.expect]}: ${body:0:300}"
}

# wrk_run KEY RUN-ID SECONDS CHECK-BODIES [wrk options…]: one wrk run; its BENCH line in WRK_LINE.
wrk_run() {
    local key="$1" run="$2" seconds="$3" check="$4" out
    shift 4
    local -a args=("mode=${S[$key.lua]}" "method=${S[$key.method]}" "path=${S[$key.path]}" "creds=${S[$key.creds]}")
    if [ -n "${S[$key.values]}" ]; then args+=("values=${S[$key.values]}"); fi
    if [ -n "${S[$key.time]}" ]; then args+=("time=${S[$key.time]}"); fi
    args+=("run=$run")
    out="$(WRK_CHECK_BODIES="$check" wrk -t"${S[$key.threads]}" -c"${S[$key.connections]}" -d"${seconds}s" \
        --timeout 10s "$@" -s "$BENCH_DIR/wrk.lua" "$BASE" -- "${args[@]}" 2>&1)" \
        || die "wrk failed for ${S[$key.label]}:"$'\n'"$out"
    printf '%s\n' "$out" >>"$WORK/wrk-$key.txt"
    WRK_LINE="$(grep '^BENCH ' <<<"$out")" || die "no summary from wrk for ${S[$key.label]}:"$'\n'"$out"
}

# run_errors BENCH-LINE: the failures a run counted.
run_errors() {
    if [ "$(field checked "$1")" = "1" ]; then
        echo $(( $(field socket_errors "$1") + $(field non2xx "$1") + $(field bad_bodies "$1") ))
    else
        echo $(( $(field socket_errors "$1") + $(field http_errors "$1") ))
    fi
}

# target_parts KEY TARGET: prints "what|target|measured|metric|verdict" for one target of a scenario.
target_parts() {
    local key="$1" metric op limit unit value measured what text
    [[ "$2" =~ $TARGET_RE ]] || die "scenario $key: cannot read the target '$2'"
    metric="${BASH_REMATCH[1]}" op="${BASH_REMATCH[2]}" limit="${BASH_REMATCH[3]}" unit="${BASH_REMATCH[5]}"
    case "$metric" in
        p50|p99)
            value="${R[$key.$metric]}"; unit="${unit:-ms}"; what="${S[$key.label]} $metric"
            printf -v measured '%.2f %s' "$value" "$unit" ;;
        req/s|ok/s)
            if [ "$metric" = "req/s" ]; then value="${R[$key.rps]}"; else value="${R[$key.okps]}"; fi
            unit="${unit:-$metric}"; what="${S[$key.label]} throughput"
            printf -v measured '%.0f %s' "$value" "$unit" ;;
        *)
            local ref="${metric##* }"
            value="$(ratio "${R[$key.rps]}" "${R[$ref.rps]:-0}")"; what="${S[$key.label]} / $ref req/s"
            measured="$value${unit:+ $unit}" ;;
    esac
    text="$op $limit${unit:+ $unit}"
    if [ "$op" = "<=" ]; then op=le; else op=ge; fi
    value="$(verdict "$value" "$op" "$limit")"
    if [ "$value" != "-" ] && [ "${R[$key.errors]}" -gt 0 ]; then value="MISSED (errors)"; fi
    printf '%s|%s|%s|%s|%s\n' "$what" "$text" "$measured" "$metric" "$value"
}

# run_scenario KEY…: check, warm-up, measured run, verdicts, summary and results rows.
run_scenario() {
    local key warm line checked_warm checked_measured target what text measured metric judged result figures
    local -a missed targets
    for key; do
        [ -n "${S[$key.label]:-}" ] || die "run_scenario: no scenario $key"
        check_answer "$key"
        checked_warm=1 checked_measured=1
        case "${S[$key.bodies]}" in warm-up) checked_measured=0 ;; none) checked_warm=0 checked_measured=0 ;; esac
        log "wrk ${S[$key.label]}: ${S[$key.warmup]} s warm-up, ${S[$key.duration]} s measured (-t${S[$key.threads]} -c${S[$key.connections]})"
        : >"$WORK/wrk-$key.txt"
        wrk_run "$key" "${RUN_ID}w" "${S[$key.warmup]}" "$checked_warm"
        warm="$WRK_LINE"
        R[$key.load]="$(load1)"
        wrk_run "$key" "${RUN_ID}m" "${S[$key.duration]}" "$checked_measured" --latency
        line="$WRK_LINE"
        R[$key.rps]="$(field rps "$line")"
        R[$key.okps]="$(field ok_rps "$line")"
        R[$key.p50]="$(field p50_ms "$line")"
        R[$key.p99]="$(field p99_ms "$line")"
        R[$key.errors]=$(( $(run_errors "$warm") + $(run_errors "$line") ))
        R[$key.checked]=$(( checked_warm * $(field requests "$warm") + checked_measured * $(field requests "$line") ))

        targets=() missed=() result="-" figures=""
        if [ -n "${S[$key.target]}" ]; then
            while IFS= read -r target; do targets+=("$target"); done < <(tr ';' '\n' <<<"${S[$key.target]}")
            result=ok
        fi
        for target in "${targets[@]}"; do
            IFS='|' read -r what text measured metric judged < <(target_parts "$key" "$target")
            summary_add "$what" "$text" "$measured" "$judged"
            figures+="${figures:+; }$measured"
            case "$judged" in
                ok) ;;
                "MISSED (errors)") result="MISSED (errors)" ;;
                MISSED) missed+=("$metric") ;;
                *) if [ "$result" = ok ]; then result="-"; fi ;;
            esac
        done
        if [ "${#missed[@]}" -gt 0 ] && [ "$result" != "MISSED (errors)" ]; then
            result="MISSED"
            if [ "${#targets[@]}" -gt 1 ]; then
                judged="$(IFS=,; echo "${missed[*]}")"
                result="MISSED (${judged//,/, })"
            fi
        fi
        R[$key.result]="$result"
        log "$key: $(printf '%.0f' "${R[$key.rps]}") req/s, $(printf '%.0f' "${R[$key.okps]}") ok/s, p99 $(printf '%.2f' "${R[$key.p99]}") ms, ${R[$key.errors]} errors: $result"
        if [ -z "$figures" ]; then figures="$(printf '%.0f req/s, p99 %.2f ms' "${R[$key.rps]}" "${R[$key.p99]}")"; fi
        result_row "$key" "${S[$key.label]}" "${S[$key.target]:--}" "$figures" "$result" \
            "${R[$key.rps]}" "${R[$key.okps]}" "${R[$key.p50]}" "${R[$key.p99]}" "${R[$key.errors]}" "${R[$key.load]}"
    done
}

# scenario_table [-x KEY]… KEY…: the table of scenarios that ran; -x KEY adds a column "x KEY" of
# each row's req/s ÷ KEY's req/s.
scenario_table() {
    local key ref width target_width=6 format="%-40s %9s %9s %8s %8s"
    local -a refs=() keys=() head dash row
    while [ $# -gt 0 ]; do
        if [ "$1" = "-x" ]; then refs+=("$2"); shift 2; else keys+=("$1"); shift; fi
    done
    for key in "${keys[@]}"; do
        [ -n "${R[$key.rps]:-}" ] || die "scenario_table: $key has not run"
        [ "${#S[$key.target]}" -le "$target_width" ] || target_width="${#S[$key.target]}"
    done
    head=("endpoint" "req/s" "ok/s" "p50 ms" "p99 ms")
    dash=("----------------------------------------" "---------" "---------" "--------" "--------")
    for ref in "${refs[@]}"; do
        width=$(( ${#ref} + 2 > 7 ? ${#ref} + 2 : 7 ))
        format+=" %${width}s"; head+=("x $ref"); dash+=("$(printf '%*s' "$width" '' | tr ' ' -)")
    done
    format+=" %7s %5s %-${target_width}s %s\n"
    head+=("errors" "load" "target" "result")
    dash+=("-------" "-----" "$(printf '%*s' "$target_width" '' | tr ' ' -)" "------")
    # shellcheck disable=SC2059  # the format is built above
    printf "$format" "${head[@]}"
    # shellcheck disable=SC2059
    printf "$format" "${dash[@]}"
    for key in "${keys[@]}"; do
        row=("${S[$key.label]}" "$(printf '%.0f' "${R[$key.rps]}")" "$(printf '%.0f' "${R[$key.okps]}")"
             "$(printf '%.2f' "${R[$key.p50]}")" "$(printf '%.2f' "${R[$key.p99]}")")
        for ref in "${refs[@]}"; do row+=("$(ratio "${R[$key.rps]}" "${R[$ref.rps]:-0}")"); done
        row+=("${R[$key.errors]}" "${R[$key.load]}" "${S[$key.target]:--}" "${R[$key.result]}")
        # shellcheck disable=SC2059
        printf "$format" "${row[@]}"
    done
}
