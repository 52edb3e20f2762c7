#!/usr/bin/env bash
# The metrics cost as instructions, not seconds: the broker runs under
# `valgrind --tool=callgrind` while `warren bench produce` sends the same
# records to it twice, once with metrics on and once with `--no-metrics`.
# Callgrind counts the instructions the broker executed (Ir), which does not
# depend on what else the two cores are doing, unlike MB/s or CPU seconds
# (benches/metrics.sh); the difference is what metrics cost the broker.
# Counters are zeroed once the topic exists and dumped when the bench ends.
#
#   benches/metrics_callgrind.sh            # 200,000 msgs of 100 B in 4 KiB batches
#   MSGS=1000000 benches/metrics_callgrind.sh
#
# Prints a Markdown table row per mode and the on/off ratio. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
MSGS=${MSGS:-200000}
SIZE=${SIZE:-100}
BATCH=${BATCH:-4096}
DIR=${WARREN_BENCH_DIR:-$PWD/target/bench-metrics-callgrind}
cargo build --release -p warren-tools --quiet
W=${CARGO_TARGET_DIR:-$PWD/target}/release/warren
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
rm -rf "$DIR" && mkdir -p "$DIR"

# $1 = metrics | no-metrics; prints the broker's total Ir.
count() {
    local mode=$1 data="$DIR/data-$1" out="$DIR/callgrind-$1.out" log="$DIR/broker-$1.log" addr pid
    rm -rf "$data"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$W" serve --data-dir "$data" --listen 127.0.0.1:0 --http 127.0.0.1:0 --"$mode" \
        >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        addr=$(grep -o 'listen=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "broker did not start: $(tail -5 "$log")" >&2; kill "$pid"; exit 1; }
    # Count only the traffic: start-up (the exporter calibrates its clock
    # once, about 16 M instructions) and shutdown are left out.
    "$W" topic create p --broker "$addr" --partitions 1 --durability none >/dev/null
    callgrind_control --zero "$pid" >/dev/null 2>&1
    "$W" bench produce --broker "$addr" --topic p --partitions 1 --durability none \
        --messages "$MSGS" --size "$SIZE" --batch-bytes "$BATCH" --acks -1 --json >"$DIR/bench-$mode.json"
    callgrind_control --dump=traffic "$pid" >/dev/null 2>&1
    kill -TERM "$pid"
    wait "$pid" || true
    # The dump taken right after the bench: its "summary:" line is the total Ir.
    grep -l 'traffic' "$out"* | xargs grep -h '^summary:' | awk '{print $2}' | head -1
}

on=$(count metrics)
off=$(count no-metrics)

# Instructions spent in metrics code itself (self cost of every function in a
# file of the metrics, metrics-util or metrics-exporter-prometheus crates, of
# broker/src/metrics.rs and storage/src/metrics.rs, and of quanta and
# crossbeam-epoch, which the exporter's histograms use). With metrics off the
# no-op handles remain; on minus off is what turning metrics on adds.
share() {
    callgrind_annotate --threshold=100 "$DIR/callgrind-$1.out.1" 2>/dev/null | awk '
        /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
        /^ *[0-9,]+ \(/ && /metrics|quanta|crossbeam-epoch/ { x = $1; gsub(",", "", x); m += x }
        END { printf "%d %d\n", total, m }'
}
read -r on_total on_m <<<"$(share metrics)"
read -r off_total off_m <<<"$(share no-metrics)"
echo "| $MSGS msgs of $SIZE B in $BATCH B batches (broker user-space instructions, callgrind) | metrics on | metrics off |"
echo "|---|---|---|"
python3 -c "
on, off, onm, offm, n = $on_total, $off_total, $on_m, $off_m, $MSGS
print(f'| all instructions during the bench | {on:,} ({on / n:,.0f} per msg) | {off:,} ({off / n:,.0f} per msg) |')
print(f'| of which in metrics code | {onm:,} ({onm / on * 100:.2f}%) | {offm:,} ({offm / off * 100:.2f}%) |')
print(f'| metrics cost: on minus off share | {(onm / on - offm / off) * 100:.2f}% of the broker | |')"
echo
echo "Totals differ by scheduling too (how many requests one wake-up finds), so"
echo "the on/off totals ($(python3 -c "print(f'{($on - $off) / $off * 100:+.1f}%')")) are not the metrics cost; the attribution above is."
