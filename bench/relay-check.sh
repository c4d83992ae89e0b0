#!/bin/sh
# relay-check.sh - the acceptance run of the gateway core: Postfix's
# smtp-source pushes MESSAGES messages over SESSIONS parallel sessions through
# mxgated to an smtp-sink; every acknowledged message must reach the sink
# exactly once. Prints throughput figures; exits 1 on loss or duplication.
#
#   bench/relay-check.sh [MESSAGES] [SESSIONS] [SIZE]     (default 20000 20 2048)
set -eu
cd "$(dirname "$0")/.."
MESSAGES=${1:-20000}
SESSIONS=${2:-20}
SIZE=${3:-2048}
MXGATED=${MXGATED:-build/mxgated}
GW_PORT=${GW_PORT:-12525}
SINK_PORT=${SINK_PORT:-12626}
work=$(mktemp -d /tmp/mxgate-bench.XXXXXX)
trap 'kill $gw $sink 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

cat > "$work/mxgate.conf" <<CONF
hostname = "mx.example.test"
spool_dir = "$work/spool"
state_dir = "$work/state"
domains = {"example.test"}
listen mx { address = "127.0.0.1:$GW_PORT" }
route "example.test" { to = "smtp:[127.0.0.1]:$SINK_PORT" }
limits { max_connections_per_ip = 1000 }
delivery { starttls = false }
queue { fsync_threads = ${FSYNC_THREADS:-16}  sync = "${SYNC:-filesystem}" }
CONF

# The sink appends every transaction to one dump file; the Received header
# mxgated adds carries the queue id, so duplicates can be counted.
sinkuser=""
[ "$(id -u)" -eq 0 ] && sinkuser="-u root" # smtp-sink insists on -u as root
smtp-sink $sinkuser -D "$work/sink.dump" -m 1000 "127.0.0.1:$SINK_PORT" 1000 &
sink=$!
"$MXGATED" -f -c "$work/mxgate.conf" 2> "$work/mxgated.log" &
gw=$!
for _ in $(seq 50); do
    grep -q "event=ready" "$work/mxgated.log" 2>/dev/null && break
    sleep 0.1
done

cpu0=$(awk '{print $14+$15}' /proc/$gw/stat)
t0=$(date +%s.%N)
smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f bench@sender.test \
    -t user@example.test "127.0.0.1:$GW_PORT"
t1=$(date +%s.%N)
# Wait until the queue is empty (every message delivered) or 120 s.
for _ in $(seq 1200); do
    [ -z "$(ls -A "$work/spool/queue")" ] && break
    sleep 0.1
done
t2=$(date +%s.%N)
cpu1=$(awk '{print $14+$15}' /proc/$gw/stat)
hz=$(getconf CLK_TCK)

queued=$(grep -c "event=queued" "$work/mxgated.log" || true)
delivered=$(grep -c "event=delivered" "$work/mxgated.log" || true)
sunk=$(grep -c "^Received: from .* (unknown \[127.0.0.1\])" "$work/sink.dump" || true)
unique=$(grep -A2 "^Received: from .* (unknown \[127.0.0.1\])" "$work/sink.dump" |
    sed -n 's/^\tid \([0-9A-F]\{16\}\).*/\1/p' | sort -u | wc -l)
left=$(ls "$work/spool/queue" | wc -l)

awk -v m="$MESSAGES" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v c="$((cpu1 - cpu0))" -v hz="$hz" \
    'BEGIN { printf "accepted: %.0f msg/s  accepted+delivered: %.0f msg/s  mxgated CPU: %.2f s per 1000 msgs\n",
             m / (t1 - t0), m / (t2 - t0), c / hz / m * 1000 }'
echo "queued=$queued delivered=$delivered at_sink=$sunk unique_at_sink=$unique left_in_queue=$left"
if [ "$queued" -ne "$MESSAGES" ] || [ "$sunk" -ne "$MESSAGES" ] || [ "$unique" -ne "$MESSAGES" ] || [ "$left" -ne 0 ]; then
    echo "FAIL: lost or duplicated messages"
    exit 1
fi
echo "OK: every acknowledged message reached the sink exactly once"
