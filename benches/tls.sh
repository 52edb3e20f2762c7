#!/usr/bin/env bash
# What TLS costs: `warren bench consume` and `warren bench produce` against a
# `warren serve` process over loopback, once plain (fetches by sendfile) and
# once with --tls-cert/--tls-key (fetches read into a buffer and encrypted by
# rustls), as a Markdown table on stdout. Progress goes to stderr.
#
#   benches/tls.sh                    # RUNS=3 runs each, medians
#   RUNS=1 SCALE=0.1 benches/tls.sh   # a quick smoke run
#
# Figures, each plain and TLS, 1 KiB records, one partition, durability none:
# - consume: ~1 GiB already in the page cache, read from the beginning by one
#   consumer; the broker's CPU (user + system, in cores) over the read, and
#   the bench client's (it decrypts and CRC-checks everything).
# - produce: ~1 GiB by one producer, acks=-1; the broker's and client's CPU.
# Each run alternates which of plain and TLS goes first. The certificate is a
# self-signed ECDSA P-256 one made with openssl, as docs/OPERATIONS.md shows;
# rustls then picks TLS 1.3 with AES-256-GCM.
#
# Environment: RUNS (default 3), SCALE (default 1), WARREN_BENCH_DIR (default
# target/bench-tls), CARGO_TARGET_DIR (where the release build goes). Needs
# openssl, python3 and /usr/bin/time (Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SCALE=${SCALE:-1}
DIR=${WARREN_BENCH_DIR:-$PWD/target/bench-tls}
mkdir -p "$DIR"
cargo build --release -p warren-tools --quiet
W=${CARGO_TARGET_DIR:-$PWD/target}/release/warren
CLK_TCK=$(getconf CLK_TCK)
NAME=tls.sh
# shellcheck source=benches/common.sh
. benches/common.sh
trap stop_broker EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# Runs a bench command, keeping its CPU use in cores in $DIR/client-cpu and
# its CPU seconds in $DIR/time.
timed() {
    /usr/bin/time -f '%e %U %S' -o "$DIR/time" "$@"
    python3 -c "e, u, s = map(float, open('$DIR/time').read().split()[-3:]); print(round((u + s) / e, 2))" \
        >"$DIR/client-cpu"
}
# CPU seconds per GB of record values moved: less sensitive than MB/s to the
# other core being busy (the processes then wait, but do not work more).
per_gb() { python3 -c "print(round($1 / $CLK_TCK / ($MSGS * 1000 / 1e9), 3))"; }
client_per_gb() {
    python3 -c "e, u, s = map(float, open('$DIR/time').read().split()[-3:]); print(round((u + s) / ($MSGS * 1000 / 1e9), 3))"
}

# CA:FALSE matters: OpenSSL marks a self-signed certificate as a CA by default,
# and rustls refuses a CA certificate as the server's own (CaUsedAsEndEntity).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null

MSGS=$(scaled 1000000)
declare -A V
add() { V[$1]="${V[$1]:-} $2"; }
med() { echo "${V[$1]}" | tr ' ' '\n' | grep . | median; }
runs() { echo "${V[$1]}" | sed 's/^ //; s/ /, /g'; }

# $1 = plain|tls: starts the broker that way and sets CA to the client flags.
start() {
    if [ "$1" = tls ]; then
        export WARREN_TLS_CERT=$DIR/cert.pem WARREN_TLS_KEY=$DIR/key.pem
        CA=(--tls-ca "$DIR/cert.pem")
    else
        unset WARREN_TLS_CERT WARREN_TLS_KEY
        CA=()
    fi
    # common.sh's start_broker reads the address from the log right after
    # starting the process, which may not have truncated the last broker's
    # log yet: remove it first so a stale address is never read.
    rm -f "$DIR/broker.log"
    start_broker
    unset WARREN_TLS_CERT WARREN_TLS_KEY
}

# $1 = plain|tls: one produce and one consume figure with broker CPU.
measure() {
    local mode=$1 out t0 t1 s0 s1
    start "$mode"
    t0=$(cpu_ticks); s0=$(date +%s.%N)
    out=$(timed "$W" bench produce --broker "$ADDR" "${CA[@]}" --topic p --partitions 1 \
        --durability none --messages "$MSGS" --size 1000 --acks -1 --json)
    t1=$(cpu_ticks); s1=$(date +%s.%N)
    add "produce_client_cpu_$mode" "$(cat "$DIR/client-cpu")"
    add "produce_$mode" "$(echo "$out" | field mb_per_sec)"
    add "produce_cpu_$mode" "$(python3 -c "print(round(($t1 - $t0) / $CLK_TCK / ($s1 - $s0), 2))")"
    add "produce_cpu_gb_$mode" "$(per_gb "$(((t1 - t0)))")"
    add "produce_client_cpu_gb_$mode" "$(client_per_gb)"
    "$W" bench produce --broker "$ADDR" "${CA[@]}" --topic c --partitions 1 --durability none \
        --messages "$MSGS" --size 1000 --acks 1 --json >/dev/null
    t0=$(cpu_ticks); s0=$(date +%s.%N)
    out=$(timed "$W" bench consume --broker "$ADDR" "${CA[@]}" --topic c --messages "$MSGS" --json)
    t1=$(cpu_ticks); s1=$(date +%s.%N)
    add "consume_client_cpu_$mode" "$(cat "$DIR/client-cpu")"
    add "consume_$mode" "$(echo "$out" | field mb_per_sec)"
    add "consume_cpu_$mode" "$(python3 -c "print(round(($t1 - $t0) / $CLK_TCK / ($s1 - $s0), 2))")"
    add "consume_cpu_gb_$mode" "$(per_gb "$(((t1 - t0)))")"
    add "consume_client_cpu_gb_$mode" "$(client_per_gb)"
    stop_broker
}

for run in $(seq "$RUNS"); do
    log "run $run/$RUNS"
    if [ $((run % 2)) = 1 ]; then order="plain tls"; else order="tls plain"; fi
    for mode in $order; do
        log "  $mode"
        measure "$mode"
    done
done

ratio() { python3 -c "print(round($1 / $2, 2))"; }
row() { # $1 = figure name, $2 = key
    local k=$2
    echo "| $1 | $(med "${k}_plain") MB/s; CPU-s per GB: broker $(med "${k}_cpu_gb_plain"), client $(med "${k}_client_cpu_gb_plain") | $(med "${k}_tls") MB/s; CPU-s per GB: broker $(med "${k}_cpu_gb_tls"), client $(med "${k}_client_cpu_gb_tls") | $(ratio "$(med "${k}_tls")" "$(med "${k}_plain")")x MB/s, $(ratio "$(med "${k}_cpu_gb_tls")" "$(med "${k}_cpu_gb_plain")")x broker CPU per GB | $(runs "${k}_plain"); $(runs "${k}_tls") |"
}
echo
echo "| Figure (1 KiB records, 1 partition, ~$((MSGS * 1000 / 1048576)) MiB), median of $RUNS | Plain TCP | TLS | TLS vs plain | MB/s of every run (plain; TLS) |"
echo "|---|---|---|---|---|"
row "consume from the page cache, 1 consumer" consume
row "produce, 1 producer, acks=-1, durability none" produce
echo
echo "Every run's values:"
for k in "${!V[@]}"; do echo "- $k:${V[$k]}"; done | sort
