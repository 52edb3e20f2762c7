#!/usr/bin/env bash
# The consumer-group issue's performance figures: `warren bench` against a
# `warren serve` process over loopback, as a Markdown table on stdout.
# Progress goes to stderr.
#
#   benches/groups.sh                     # RUNS=3 runs each, medians
#   RUNS=1 SCALE=0.1 benches/groups.sh    # a quick smoke run
#
# Figures:
# - rebalance: `warren bench rebalance` with 10 members over 100 partitions,
#   an 11th member joining and leaving in turn (10 rounds per run): the time
#   from the join/leave until the broker reports every partition owned and the
#   group balanced. Median and worst round per run; the table gives the median
#   of the runs' medians and the worst of all rounds.
# - group consume vs plain fetch: the same 1 KiB records in the page cache
#   (one partition, ~1 GiB), read once by a plain consumer of the partition
#   and once by a member of a new consumer group (heartbeats and auto-commit
#   running); each run alternates which goes first.
#
# Environment: RUNS (default 3), SCALE (default 1), WARREN_BENCH_DIR (default
# target/bench-groups).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SCALE=${SCALE:-1}
DIR=${WARREN_BENCH_DIR:-$PWD/target/bench-groups}
mkdir -p "$DIR"
cargo build --release -p warren-tools --quiet
W=$PWD/target/release/warren
NAME=groups.sh
# shellcheck source=benches/common.sh
. benches/common.sh
trap stop_broker EXIT

declare -A V
add() { V[$1]="${V[$1]:-} $2"; }
med() { echo "${V[$1]}" | tr ' ' '\n' | grep . | median; }
maxof() { echo "${V[$1]}" | tr ' ' '\n' | grep . | sort -g | tail -1; }

MSGS=$(scaled 1000000)
ROUNDS=$(scaled 10)
for run in $(seq "$RUNS"); do
    log "run $run/$RUNS"
    start_broker
    out=$("$W" bench rebalance --broker "$ADDR" --members 10 --partitions 100 --rounds "$ROUNDS" --json)
    add rebalance_median "$(echo "$out" | field median_ms)"
    add rebalance_max "$(echo "$out" | field max_ms)"

    "$W" bench produce --broker "$ADDR" --topic c --partitions 1 --durability none \
        --messages "$MSGS" --size 1000 --acks 1 --json >/dev/null
    if [ $((run % 2)) -eq 1 ]; then order="plain group"; else order="group plain"; fi
    for kind in $order; do
        flag=""
        [ "$kind" = group ] && flag="--group"
        out=$("$W" bench consume --broker "$ADDR" --topic c --messages "$MSGS" $flag --json)
        add "consume_$kind" "$(echo "$out" | field mb_per_sec)"
    done
    stop_broker
done

plain=$(med consume_plain)
group=$(med consume_group)
ratio=$(python3 -c "print(round($group / $plain, 3))")
echo "| Figure | Median of $RUNS runs | Every run | Target |"
echo "|---|---|---|---|"
echo "| rebalance, 10 members, 100 partitions, join/leave -> settled | $(med rebalance_median) ms (worst round $(maxof rebalance_max) ms) | medians:${V[rebalance_median]} | < 1000 ms |"
echo "| consume, 1 consumer, plain partition fetch | $plain MB/s | ${V[consume_plain]} | |"
echo "| consume, 1 consumer, consumer-group member | $group MB/s ($ratio x plain) | ${V[consume_group]} | >= 0.9 x plain |"
