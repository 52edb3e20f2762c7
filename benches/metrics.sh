#!/usr/bin/env bash
# The metrics issue's figure: the produce benchmark against a broker with
# metrics on (`--metrics`, the default) and off (`--no-metrics`), as a Markdown
# table on stdout. Progress goes to stderr.
#
#   benches/metrics.sh                  # RUNS=3 runs of each, alternating, medians
#   RUNS=1 SCALE=0.1 benches/metrics.sh # a quick smoke run
#
# Two workloads:
# - the README's produce figure: 1 KiB messages, 1 MiB batches, one producer,
#   acks=-1, durability none (about 1000 messages per Produce request);
# - a request-heavy one: 100-byte messages in 4 KiB batches (about 35
#   messages per request), where the per-request cost of metrics (two clock
#   reads, a counter, a histogram sample) weighs most.
# Runs alternate which mode goes first, so a drift of the machine during a
# run (the VM's page cache, another process compiling) hits both modes alike.
# Each "on" run also scrapes /metrics and checks that the produced-records
# counter matches what was sent, so the figure is taken with metrics live.
#
# Environment: RUNS (default 3), SCALE (default 1), WARREN_BENCH_DIR (default
# target/bench-metrics), CARGO_TARGET_DIR (where the release build goes).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SCALE=${SCALE:-1}
DIR=${WARREN_BENCH_DIR:-$PWD/target/bench-metrics}
mkdir -p "$DIR"
cargo build --release -p warren-tools --quiet
W=${CARGO_TARGET_DIR:-$PWD/target}/release/warren

NAME=metrics.sh
# shellcheck source=benches/common.sh
. benches/common.sh
trap stop_broker EXIT

# Write and delete $1 MiB so the run's page cache is memory the host has just
# backed (see the top of benches/broker.sh).
warm() {
    dd if=/dev/zero of="$DIR/warm.tmp" bs=1M count="$1" 2>/dev/null
    rm -f "$DIR/warm.tmp"
}
http_addr() { grep -o 'http=[0-9.:]*' "$DIR/broker.log" | head -1 | cut -d= -f2; }
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

declare -A V
add() { V[$1]="${V[$1]:-} $2"; }

# $1 = mode (metrics | no-metrics), $2 = workload (big | small)
one() {
    local mode=$1 load=$2 msgs size batch out
    if [ "$load" = big ]; then
        msgs=$(scaled 2000000) size=1000 batch=1048576
    else
        msgs=$(scaled 4000000) size=100 batch=4096
    fi
    BROKER_ARGS="--$mode" start_broker
    warm $((msgs * (size + 60) / 1048576 + 64))
    local t0 t1
    t0=$(cpu_ticks)
    out=$("$W" bench produce --broker "$ADDR" --topic "p" --partitions 1 --durability none \
        --messages "$msgs" --size "$size" --batch-bytes "$batch" --acks -1 --json)
    t1=$(cpu_ticks)
    add "${load}_${mode}" "$(echo "$out" | field msgs_per_sec)"
    # Broker CPU (user + system) per million messages: steadier than the
    # rate when other processes compete for the two cores.
    add "${load}_${mode}_cpu" "$(python3 -c "print(round(($t1 - $t0) / $CLK_TCK / $msgs * 1e6, 3))")"
    add "${load}_${mode}_mb" "$(echo "$out" | field mb_per_sec)"
    if [ "$mode" = metrics ]; then
        local produced
        produced=$(curl -sf "http://$(http_addr)/metrics" |
            awk '/^warren_produced_records_total\{topic="p",partition="0"\}/ {print $2}')
        if [ "$produced" != "$msgs" ]; then
            log "metrics say $produced records produced, the bench sent $msgs"
            exit 1
        fi
    else
        local status
        status=$(curl -s -o /dev/null -w '%{http_code}' "http://$(http_addr)/metrics")
        [ "$status" = 404 ] || { log "--no-metrics: /metrics answered $status"; exit 1; }
    fi
    stop_broker
}

for run in $(seq "$RUNS"); do
    log "run $run/$RUNS"
    if [ $((run % 2)) = 1 ]; then order="metrics no-metrics"; else order="no-metrics metrics"; fi
    for load in big small; do
        for mode in $order; do one "$mode" "$load"; done
    done
done

m() { echo "${V[$1]}" | tr ' ' '\n' | grep . | median; }
diff_pct() { python3 -c "print(f'{($1 - $2) / $2 * 100:+.1f}%')"; }
echo
echo "| Produce workload | metrics on (median of $RUNS) | metrics off | on vs off | broker CPU s per M msgs, on / off |"
echo "|---|---|---|---|---|"
echo "| 1 KiB msgs, 1 MiB batches, acks=-1, none | $(m big_metrics) msgs/s ($(m big_metrics_mb) MB/s) | $(m big_no-metrics) msgs/s ($(m big_no-metrics_mb) MB/s) | $(diff_pct "$(m big_metrics)" "$(m big_no-metrics)") | $(m big_metrics_cpu) / $(m big_no-metrics_cpu) ($(diff_pct "$(m big_metrics_cpu)" "$(m big_no-metrics_cpu)")) |"
echo "| 100 B msgs, 4 KiB batches, acks=-1, none | $(m small_metrics) msgs/s | $(m small_no-metrics) msgs/s | $(diff_pct "$(m small_metrics)" "$(m small_no-metrics)") | $(m small_metrics_cpu) / $(m small_no-metrics_cpu) ($(diff_pct "$(m small_metrics_cpu)" "$(m small_no-metrics_cpu)")) |"
echo
echo "Every run's values (msgs/s; _mb: MB/s; _cpu: broker CPU seconds per million messages):"
for k in "${!V[@]}"; do echo "- $k:${V[$k]}"; done | sort
