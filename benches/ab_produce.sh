#!/usr/bin/env bash
# A/B produce (or consume) throughput and broker CPU of two `warren` binaries,
# alternating runs so both see the same machine weather. Used to check that a
# change (the issue-13 hardening; the issue-14 reshape) costs no throughput.
#
#   benches/ab_produce.sh OLD_WARREN NEW_WARREN        # RUNS=3 rounds, 2M x 1 KiB per run
#   RUNS=5 MESSAGES=1000000 ZSTD=1 DURABILITY=fsync benches/ab_produce.sh old new
#   MODE=consume benches/ab_produce.sh old new         # consume what one produce wrote
#
# MODE=consume: each run first produces MESSAGES (acks=1, not measured), then
# measures one `warren bench consume` of all of them from the page cache, with
# the broker's CPU seconds during the consume only.
#
# Each run: a fresh data dir under $WARREN_BENCH_DIR (default target/bench-ab),
# a warm-up (write and delete a file the run's size: fresh page cache is slow on
# this VM, see benches/broker.sh), `warren serve` on 127.0.0.1, one `warren bench
# produce` (acks=-1, durability none or $DURABILITY), then the broker's CPU seconds from
# /proc/PID/stat. Prints one line per run and the medians.
set -euo pipefail
old=$1 new=$2
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-2000000}
SIZE=${SIZE:-1000}
DIR=${WARREN_BENCH_DIR:-$PWD/target/bench-ab}
zstd=()
[ "${ZSTD:-0}" = 1 ] && zstd=(--zstd)
mkdir -p "$DIR"
tck=$(getconf CLK_TCK)
one() { # $1 = label, $2 = binary
    rm -rf "$DIR/data"
    local mib=$(( MESSAGES * (SIZE + 70) / 1048576 + 64 ))
    dd if=/dev/zero of="$DIR/warm.tmp" bs=1M count="$mib" status=none; rm -f "$DIR/warm.tmp"
    "$2" serve --data-dir "$DIR/data" --listen 127.0.0.1:17171 --http 127.0.0.1:17180 >"$DIR/serve.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/17171) 2>/dev/null && break; sleep 0.05; done
    local out cpu0=0
    if [ "${MODE:-produce}" = consume ]; then
        "$2" bench produce --broker 127.0.0.1:17171 --topic ab --durability none --acks 1 \
            --messages "$MESSAGES" --size "$SIZE" "${zstd[@]}" --json >/dev/null
        cpu0=$(awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$pid/stat")
        out=$("$2" bench consume --broker 127.0.0.1:17171 --topic ab --messages "$MESSAGES" --json)
    else
        out=$("$2" bench produce --broker 127.0.0.1:17171 --topic ab --durability "${DURABILITY:-none}" --acks -1 \
            --messages "$MESSAGES" --size "$SIZE" "${zstd[@]}" --json)
    fi
    local cpu
    cpu=$(awk -v t="$tck" -v c0="$cpu0" '{printf "%.2f", ($14 + $15) / t - c0}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" || true
    python3 - "$1" "$cpu" "$out" <<'PY'
import json, sys
label, cpu, out = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
mb = out.get("mb_per_sec") or out.get("MBps") or out.get("throughput_mb_per_sec")
gb = out.get("bytes", 0) / 1e9
print(f"{label} {mb:.0f} MB/s broker_cpu_s {cpu:.2f} cpu_s_per_GB {cpu / gb if gb else float('nan'):.3f}")
PY
}
dd_ref() { # MB/s of a 1 GiB dd into the page cache right after a warm-up
    dd if=/dev/zero of="$DIR/warm.tmp" bs=1M count=1024 status=none; rm -f "$DIR/warm.tmp"
    dd if=/dev/zero of="$DIR/dd.tmp" bs=1M count=1024 2>&1 | tail -1 | awk '{print int($(NF-1) * ($NF ~ /GB/ ? 1000 : 1))}'
    rm -f "$DIR/dd.tmp"
}
results=()
for r in $(seq "$RUNS"); do
    results+=("$(one old "$old")") ; echo "${results[-1]}" >&2
    results+=("$(one new "$new")") ; echo "${results[-1]}" >&2
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics as st
rows = {}
for line in sys.stdin:
    p = line.split()
    rows.setdefault(p[0], []).append((float(p[1]), float(p[6])))
for k, v in rows.items():
    runs = ", ".join(str(int(x)) for x, _ in v)
    mb = st.median(x for x, _ in v)
    cpu = st.median(y for _, y in v)
    print(f"{k}: median {mb:.0f} MB/s (runs {runs}), median {cpu:.3f} broker CPU-s per GB")
'
echo "dd to the page cache right after a warm-up, same session: $(dd_ref) MB/s"
