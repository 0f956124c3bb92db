#!/usr/bin/env bash
# scripts/bench/compare.sh OLD.tsv NEW.tsv: two results files of scripts/bench.sh (BENCH_RESULTS)
# side by side, by key: the rate (ok/s, or req/s where a row has no ok/s) and the p99 of each, old,
# new and the change in percent; rows without either (memory, thread counts, …) show what was
# measured, with the change where both start with a number. Keys of one file only show "-" for the
# other. For judging a change: run the old and the new binary alternately, each on a fresh stack
# (docs/performance.md, Method), then compare the runs pairwise.
set -euo pipefail

if [ $# -ne 2 ] || [ ! -f "$1" ] || [ ! -f "$2" ]; then
    echo "usage: $0 OLD.tsv NEW.tsv (results files of scripts/bench.sh)" >&2
    exit 2
fi

awk -F'\t' '
    function col(name,    i) { for (i = 1; i <= NF; i++) if ($i == name) return i; return 0 }
    function num(v) { return v ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ }
    function lead(v) { return v ~ /^-?[0-9]+(\.[0-9]+)?/ }
    function change(a, b) {
        if (!lead(a) || !lead(b) || a + 0 == 0) return "-"
        return sprintf("%+.1f%%", (b - a) * 100 / a)
    }
    function shown(v, digits) { return num(v) ? sprintf("%." digits "f", v) : v }
    FNR == 1 {
        file++
        kc = col("key"); wc = col("what"); mc = col("measured"); rc = col("req/s"); oc = col("ok/s"); pc = col("p99_ms")
        if (!kc || !mc) { printf "%s: not a results file of scripts/bench.sh (no key or measured column)\n", FILENAME > "/dev/stderr"; bad = 1; exit 2 }
        if ((getline) <= 0) next
        header[file] = sprintf("%s: commit %s, %s", FILENAME, $1, $2)
    }
    {
        k = $kc
        if (!(k in seen)) { seen[k] = 1; order[++n] = k; what[k] = (wc ? $wc : "") }
        rate[file, k] = (oc && num($oc)) ? $oc : ((rc && num($rc)) ? $rc : "")
        p99[file, k] = (pc && num($pc)) ? $pc : ""
        measured[file, k] = $mc
        has[file, k] = 1
    }
    END {
        if (bad) exit 2
        print "old " header[1]
        print "new " header[2]
        print ""
        fmt = "%-20s %11s %11s %8s %9s %9s %8s  %s\n"
        printf fmt, "key", "ok/s old", "new", "change", "p99 old", "new", "change", "what"
        printf fmt, "--------------------", "-----------", "-----------", "--------", "---------", "---------", "--------", "----"
        for (i = 1; i <= n; i++) {
            k = order[i]
            if (rate[1, k] != "" || rate[2, k] != "" || p99[1, k] != "" || p99[2, k] != "") {
                a = rate[1, k]; b = rate[2, k]; c = p99[1, k]; d = p99[2, k]
                printf fmt, k, (a == "" ? "-" : shown(a, 0)), (b == "" ? "-" : shown(b, 0)), change(a, b),
                    (c == "" ? "-" : shown(c, 2)), (d == "" ? "-" : shown(d, 2)), change(c, d), what[k]
            } else {
                a = has[1, k] ? measured[1, k] : "-"; b = has[2, k] ? measured[2, k] : "-"
                c = change(a, b)
                printf "%-20s old %s; new %s%s  (%s)\n", k, a, b, (c == "-" ? "" : "; " c), what[k]
            }
        }
        print ""
        print "ok/s: answers that were 2xx with \"code\":1 (or, where bodies are not read, without a status >= 400)"
        print "per second of the measured run; change: (new - old) / old."
    }
' "$1" "$2"
