# Shell helpers shared by the bench scripts (sourced, not run): logging,
# medians, JSON fields, and a `warren serve` process on 127.0.0.1:0 with its
# data in $DIR/data. Expects NAME, DIR, W and SCALE to be set; BROKER_ARGS, if
# set, is added to `warren serve`'s flags.
log() { echo "[$NAME] $*" >&2; }
scaled() { python3 -c "print(max(1, int($1 * $SCALE)))"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }

PID=
ADDR=
start_broker() {
    stop_broker
    rm -rf "$DIR/data"
    sync
    # shellcheck disable=SC2086 # BROKER_ARGS: extra flags, split on spaces
    WARREN_RETENTION_CHECK_MS=1000 "$W" serve --data-dir "$DIR/data" \
        --listen 127.0.0.1:0 --http 127.0.0.1:0 ${BROKER_ARGS:-} 2>"$DIR/broker.log" &
    PID=$!
    for _ in $(seq 100); do
        ADDR=$(grep -o 'listen=[0-9.:]*' "$DIR/broker.log" | head -1 | cut -d= -f2 || true)
        [ -n "$ADDR" ] && return 0
        sleep 0.1
    done
    log "broker did not start:"; cat "$DIR/broker.log" >&2; exit 1
}
stop_broker() {
    if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi
}
