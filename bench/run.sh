#!/usr/bin/env bash
# bench/run.sh: run the standard scenarios against the raw ceiling and
# build/ssehub, server and load generator pinned to different cores, each
# cell repeated; print one table (median, with min-max where it matters).
#
#   bench/run.sh [--quick] [--reps N] [--servers "raw ssehub"] [--only a,b]
#                [--workers N] [--server-cpu C] [--load-cpu C] [--out FILE]
#                [--baseline BIN]
#
# --baseline BIN: also run every cell against another ssehub binary (server
# "base", e.g. the previous release), in the same run, and print ssehub/base.
# --quick: small N, one repetition, under 2 minutes; exits 1 when a cell is
# bad (server died, streams failed, events missing or duplicated, publish
# errors), so it doubles as a smoke test.
# Only processes this script started are ever signalled.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${SSEBENCH:-$ROOT/build/ssebench}
SSEHUB=${SSEHUB:-$ROOT/build/ssehub}
BASELINE=
QUICK=0
REPS=
SERVERS="raw ssehub"
ONLY=
WORKERS=1
SCPU=0
LCPU=1
OUT=

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --server-cpu) SCPU=$2; shift ;;
    --load-cpu) LCPU=$2; shift ;;
    --out) OUT=$2; shift ;;
    --baseline) BASELINE=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$REPS" ] || { [ $QUICK = 1 ] && REPS=1 || REPS=3; }
[ -z "$BASELINE" ] || SERVERS="$SERVERS base"

if [ ! -x "$BENCH" ]; then
    make -C "$ROOT" -s build/ssebench >/dev/null 2>&1 ||
        gcc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$BENCH" "$ROOT/bench/ssebench.c" ||
        { echo "run.sh: cannot build $BENCH" >&2; exit 2; }
fi
NCPU=$(nproc)
if [ "$NCPU" -lt 2 ]; then SCPU=0; LCPU=0; fi
PIN_S="taskset -c $SCPU"
PIN_L="taskset -c $LCPU"
command -v taskset >/dev/null || { PIN_S=; PIN_L=; }

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/build/bench"
[ -n "$OUT" ] || OUT="$ROOT/build/bench/results-$STAMP.txt"
: >"$OUT"
WORK=$(mktemp -d /tmp/ssebench.XXXXXX)
SPID=
cleanup() {
    if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
        kill -TERM "$SPID" 2>/dev/null
        sleep 0.5
        kill -KILL "$SPID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Snapshot the server binary so a rebuild during the run can't change it.
for s in $SERVERS; do
    if [ "$s" = ssehub ]; then
        if [ ! -x "$SSEHUB" ]; then
            echo "run.sh: $SSEHUB not built (run make, or pass --servers raw)" >&2
            exit 2
        fi
        cp "$SSEHUB" "$WORK/ssehub" || exit 2
        echo "ssebench: ssehub = $SSEHUB ($($SSEHUB --version 2>/dev/null | head -n 1), sha1 $(sha1sum <"$SSEHUB" | cut -c1-12))" >&2
        SSEHUB=$WORK/ssehub
    fi
    if [ "$s" = base ]; then
        [ -x "$BASELINE" ] || { echo "run.sh: --baseline $BASELINE is not an executable" >&2; exit 2; }
        cp "$BASELINE" "$WORK/base" || exit 2
        echo "ssebench: base = $BASELINE ($($BASELINE --version 2>/dev/null | head -n 1), sha1 $(sha1sum <"$BASELINE" | cut -c1-12))" >&2
        BASELINE=$WORK/base
    fi
done

APP_KEY=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
SUB_USER=bench-sub SUB_PASS=bench-sub-pass-$RANDOM
PUB_USER=bench-pub PUB_PASS=bench-pub-pass-$RANDOM

# name | load arguments | kind (burst, rate, pub, idle, cap)
if [ $QUICK = 1 ]; then
    SCENARIOS=(
        "burst-200x50|-n 200 --count 50 --depth 16|burst"
        "burst-2000x10|-n 2000 --count 10 --depth 16|burst"
        "rate10-200|-n 200 --count 10 --rate 10 --depth 16|rate"
        "pubs-20-c1|-n 20 --count 500 --conns 1 --depth 1|pub"
        "pubs-20-c4|-n 20 --count 500 --conns 4 --depth 1|pub"
        "idle-1000|-n 1000 --count 0 --hold 1|idle"
    )
else
    SCENARIOS=(
        "burst-1k-x200|-n 1000 --count 200 --depth 32|burst"
        "burst-10k-x50|-n 10000 --count 50 --depth 32|burst"
        "rate10-1k|-n 1000 --count 50 --rate 10 --depth 16|rate"
        "rate10-10k|-n 10000 --count 50 --rate 10 --depth 16|rate"
        "pubs-100-c1|-n 100 --count 3000 --conns 1 --depth 1|pub"
        "pubs-100-c4|-n 100 --count 3000 --conns 4 --depth 1|pub"
        "pubs-100-c1-nodb|-n 100 --count 3000 --conns 1 --depth 1|pub|SSE_DB=off"
        "pubs-100-c4-nodb|-n 100 --count 3000 --conns 4 --depth 1|pub|SSE_DB=off"
        "fast-10k-r20|-n 10000 --count 200 --rate 20 --depth 16 --size 1000|rate|SSE_MAX_QUEUE_BYTES=65536 SSE_STREAM_SNDBUF=16384"
        "slow10-10k-r20|-n 10000 --count 200 --rate 20 --depth 16 --size 1000 --slow-pct 10|rate|SSE_MAX_QUEUE_BYTES=65536 SSE_STREAM_SNDBUF=16384"
        "idle-10k|-n 10000 --count 0 --hold 2|idle"
        "idle-max|-n 20000 --count 0 --hold 2 --connect-timeout 40|cap"
    )
fi

# wait_port PORT PID: until PORT accepts (bounded 15 s) while PID lives.
wait_port() {
    local i
    for i in $(seq 1 150); do
        kill -0 "$2" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# start_server KIND PORT LOG [VAR=VALUE...]: sets SPID. The settings go to ssehub only.
start_server() {
    local kind=$1 port=$2 log=$3
    shift 3
    if [ "$kind" = raw ]; then
        $PIN_S "$BENCH" raw --host 127.0.0.1 --port "$port" --duration 900 2>"$log" &
        SPID=$!
    else
        local dir="$WORK/srv-$port" bin=$SSEHUB
        [ "$kind" = base ] && bin=$BASELINE
        mkdir -p "$dir"
        (cd "$dir" && exec env SSE_HOST=127.0.0.1 SSE_PORT="$port" SSE_APP_KEY="$APP_KEY" \
            SSE_BROADCASTER_USERNAME=$PUB_USER SSE_BROADCASTER_PASSWORD=$PUB_PASS \
            SSE_CLIENT_USERNAME=$SUB_USER SSE_CLIENT_PASSWORD=$SUB_PASS \
            SSE_WORKERS="$WORKERS" SSE_LOG_LEVEL=warn "$@" $PIN_S "$bin") 2>"$log" &
        SPID=$!
    fi
    wait_port "$port" "$SPID"
}

# stop_server: SIGTERM our server, SIGKILL after 6 s; its exit code -> SRV_RC.
stop_server() {
    local i
    SRV_RC=
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null
    for i in $(seq 1 60); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SPID" 2>/dev/null && kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SRV_RC=$?
    SPID=
}

selected() {
    [ -z "$ONLY" ] && return 0
    case ",$ONLY," in *",$1,"*) return 0 ;; esac
    return 1
}

echo "ssebench: servers [$SERVERS], reps $REPS, server on cpu $SCPU, load on cpu $LCPU, SSE_WORKERS=$WORKERS" >&2
echo "ssebench: raw results -> $OUT" >&2
for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r name args kind senv <<<"$sc"
    selected "$name" || continue
    for rep in $(seq 1 "$REPS"); do
        for srv in $SERVERS; do
            port=$("$BENCH" freeport)
            log="$WORK/$srv-$name-$rep.log"
            # shellcheck disable=SC2086 # senv is a list of VAR=VALUE words
            if ! start_server "$srv" "$port" "$log" $senv; then
                echo "scenario=$name server=$srv rep=$rep kind=$kind error=server_start" >>"$OUT"
                echo "  $name/$srv#$rep: server did not start: $(tail -n 3 "$log" | tr '\n' ' ')" >&2
                stop_server
                continue
            fi
            res=$(timeout 300 $PIN_L "$BENCH" load --port "$port" --server-pid "$SPID" \
                --sub-login "$SUB_USER:$SUB_PASS" --pub-login "$PUB_USER:$PUB_PASS" \
                --type sse --src-addrs 8 $args 2>"$WORK/load.err")
            lrc=$?
            alive=1
            kill -0 "$SPID" 2>/dev/null || alive=0
            stop_server
            extra=""
            [ $lrc = 0 ] || extra="$extra error=load_rc_$lrc"
            [ $alive = 1 ] || extra="$extra error=server_died_rc_$SRV_RC"
            [ -n "$res" ] || res="connected=0"
            echo "scenario=$name server=$srv rep=$rep kind=$kind $res$extra" >>"$OUT"
            echo "  $name/$srv#$rep: $(echo "$res" | grep -o 'connected=[0-9]*') $(echo "$res" | grep -o 'deliv_s=[0-9]*') $(echo "$res" | grep -o 'pub_s=[0-9]*')$extra" >&2
            if [ $alive = 0 ] || [ $lrc != 0 ]; then
                tail -n 5 "$log" "$WORK/load.err" >&2
            fi
        done
    done
done

# ---- table ---------------------------------------------------------------
awk -v quick=$QUICK '
function med(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (n == 0) return ""
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function mn(s,   a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return m }
function mx(s,   a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
function k(x) { return (x >= 10000) ? sprintf("%.0fk", x / 1000) : (x >= 1000 ? sprintf("%.1fk", x / 1000) : sprintf("%.0f", x)) }
function ms(us) { return (us >= 100000) ? sprintf("%.0f", us / 1000) : sprintf("%.2f", us / 1000) }
function add(key, v) { vals[key] = (key in vals) ? vals[key] " " v : v }
{
    delete f
    for (i = 1; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) }
    s = f["scenario"]; v = f["server"]; id = s SUBSEP v
    if (!(s in seen_s)) { seen_s[s] = 1; order[++ns] = s; kind[s] = f["kind"] }
    if (!(id in seen_v)) { seen_v[id] = 1; servers[s] = servers[s] " " v }
    reps[id]++
    bad = ""
    if ("error" in f) bad = bad " " f["error"]
    if (f["kind"] != "cap" && f["connected"] + 0 < f["target"] + 0) bad = bad " failed=" (f["target"] - f["connected"])
    if (f["missing"] + 0 > 0) bad = bad " missing=" f["missing"]
    if (f["dups"] + 0 > 0) bad = bad " dups=" f["dups"]
    if (f["dropped"] + 0 > 0) bad = bad " dropped=" f["dropped"]
    if (f["slow"] + 0 > 0) { w = "slow=" f["slow"] "/dropped=" f["slow_dropped"]; if (!((id, "slow") in noted)) { noted[id, "slow"] = 1; notes[id] = notes[id] " " w } }
    if (f["pub_errors"] + 0 > 0 || f["pub_4xx"] + 0 > 0 || f["pub_5xx"] + 0 > 0) bad = bad " pub_err=" (f["pub_errors"] + f["pub_4xx"] + f["pub_5xx"])
    if (f["kind"] != "idle" && f["kind"] != "cap" && f["pub_ok"] + 0 == 0) bad = bad " no_publishes"
    if (bad != "") {
        nbad++; nb = split(bad, bw, " ")
        for (i = 1; i <= nb; i++) { w = bw[i]; sub(/=.*/, "", w); if (!((id, w) in noted)) { noted[id, w] = 1; notes[id] = notes[id] " " bw[i] } }
    }
    if ("error" in f) next  # a failed cell does not enter the medians
    add(id SUBSEP "deliv", f["deliv_s"] + 0); add(id SUBSEP "p50", f["p50_us"] + 0); add(id SUBSEP "p99", f["p99_us"] + 0)
    add(id SUBSEP "pub", f["pub_s"] + 0); add(id SUBSEP "conn", f["connected"] + 0); add(id SUBSEP "rss", f["rss_per_sub_b"] + 0)
    add(id SUBSEP "cpu", (f["kind"] == "idle" || f["kind"] == "cap") ? f["cpu_connect_ms"] + 0 : f["cpu_pub_ms"] + 0)
    add(id SUBSEP "nsd", f["cpu_ns_per_deliv"] + 0)
}
END {
    print "| scenario | server | subs | deliveries/s med (min-max) | x raw | p50 ms | p99 ms (min-max) | p99 x raw | publishes/s med (min-max) | x raw | RSS B/sub | server CPU ms | CPU ns/delivery | notes |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (o = 1; o <= ns; o++) {
        s = order[o]; kd = kind[s]
        rid = s SUBSEP "raw"
        n = split(substr(servers[s], 2), sv, " ")
        for (j = 1; j <= n; j++) {
            v = sv[j]; id = s SUBSEP v
            d = med(vals[id SUBSEP "deliv"]); p99 = med(vals[id SUBSEP "p99"]); pb = med(vals[id SUBSEP "pub"])
            ev = (kd != "idle" && kd != "cap")
            dcol = ev ? sprintf("%s (%s-%s)", k(d), k(mn(vals[id SUBSEP "deliv"])), k(mx(vals[id SUBSEP "deliv"]))) : "-"
            pcol = ev ? sprintf("%s (%s-%s)", k(pb), k(mn(vals[id SUBSEP "pub"])), k(mx(vals[id SUBSEP "pub"]))) : "-"
            r1 = r2 = r3 = "-"
            if (ev && v != "raw" && (rid in seen_v)) {
                rd = med(vals[rid SUBSEP "deliv"]); rp = med(vals[rid SUBSEP "p99"]); rb = med(vals[rid SUBSEP "pub"])
                if (rd > 0) r1 = sprintf("%.2f", d / rd)
                if (rp > 0) r2 = sprintf("%.2f", p99 / rp)
                if (rb > 0) r3 = sprintf("%.2f", pb / rb)
            }
            l50 = ev ? ms(med(vals[id SUBSEP "p50"])) : "-"
            l99 = ev ? sprintf("%s (%s-%s)", ms(p99), ms(mn(vals[id SUBSEP "p99"])), ms(mx(vals[id SUBSEP "p99"]))) : "-"
            rss = ev ? "-" : med(vals[id SUBSEP "rss"])
            nsd = ev ? sprintf("%.0f", med(vals[id SUBSEP "nsd"])) : "-"
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |%s |\n", s, v, med(vals[id SUBSEP "conn"]), dcol, r1, l50, l99, r2, pcol, r3, rss, sprintf("%.0f", med(vals[id SUBSEP "cpu"])), nsd, notes[id]
        }
    }
    # The same cells against the baseline binary, as ratios ssehub / base.
    nb = 0
    for (o = 1; o <= ns; o++) if ((order[o] SUBSEP "base") in seen_v) nb++
    if (nb > 0) {
        print ""
        print "| scenario | deliveries/s ssehub/base | p99 ssehub/base | publishes/s ssehub/base | RSS B/sub ssehub/base | CPU ns/delivery ssehub/base |"
        print "|---|---|---|---|---|---|"
        for (o = 1; o <= ns; o++) {
            s = order[o]; a = s SUBSEP "ssehub"; b = s SUBSEP "base"
            if (!((a in seen_v) && (b in seen_v))) continue
            printf "| %s | %s | %s | %s | %s | %s |\n", s, ratio(a, b, "deliv"), ratio(a, b, "p99"), ratio(a, b, "pub"), ratio(a, b, "rss"), ratio(a, b, "nsd")
        }
    }
    if (nbad > 0) exit 1
}
function ratio(a, b, what,   x, y) {
    x = med(vals[a SUBSEP what]); y = med(vals[b SUBSEP what])
    return (x != "" && y != "" && y + 0 > 0 && x + 0 > 0) ? sprintf("%.2f", x / y) : "-"
}' "$OUT"
trc=$?

# ---- history replay ------------------------------------------------------
# Time for a client with Last-Event-ID: 0 to receive REPLAY_N stored events
# (connect to last event parsed), ssehub only (raw keeps no history).
if [ $QUICK = 1 ]; then REPLAY_N=1000; else REPLAY_N=10000; fi
for rsrv in ssehub base; do
selected replay && [[ " $SERVERS " == *" $rsrv "* ]] || continue
    port=$("$BENCH" freeport)
    if start_server "$rsrv" "$port" "$WORK/replay.log"; then
        "$BENCH" pub --port "$port" --pub-login "$PUB_USER:$PUB_PASS" --type sse --count "$REPLAY_N" \
            --conns 4 --depth 16 --duration 60 >/dev/null 2>&1
        times=""
        for rep in $(seq 1 $((REPS * 3))); do
            res=$($PIN_L "$BENCH" sub --port "$port" -n 1 --sub-login "$SUB_USER:$SUB_PASS" --type sse \
                --last-event-id 0 --expect "$REPLAY_N" --duration 30 2>/dev/null | tail -n 1)
            echo "scenario=replay-$REPLAY_N server=$rsrv rep=$rep kind=replay $res" >>"$OUT"
            u=$(echo "$res" | grep -o 'unique=[0-9]*' | cut -d= -f2)
            [ "${u:-0}" = "$REPLAY_N" ] || { echo "replay ($rsrv): got ${u:-0} of $REPLAY_N events" >&2; trc=1; }
            times="$times $(echo "$res" | grep -o 'start_to_last_ms=[0-9.]*' | cut -d= -f2)"
        done
        stop_server
        echo "$times" | tr ' ' '\n' | grep . | sort -n | awk -v n="$REPLAY_N" -v who="$rsrv" '
            { v[++k] = $1 } END { printf "\nreplay of %d missed events (Last-Event-ID: 0) on %s, connect to last event: median %.1f ms, min %.1f, max %.1f, runs %d\n", n, who, (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2, v[1], v[k], k }'
    else
        echo "replay: $rsrv did not start" >&2
        trc=1
    fi
done
echo >&2
echo "subs = streams connected (median); latency = publisher send -> subscriber parse, CLOCK_MONOTONIC;" >&2
echo "RSS B/sub = server VmRSS delta over the connected idle streams; server CPU = publish phase (idle rows: connect phase)." >&2
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -r); reps=$REPS" >&2
if [ $trc != 0 ]; then
    echo "run.sh: some cells were bad (see notes column and $OUT)" >&2
    [ $QUICK = 1 ] && exit 1
fi
exit 0
