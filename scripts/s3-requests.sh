#!/usr/bin/env bash
# Counts the S3 requests a live `sundial project` makes: a local moto S3
# server logs every request while an aiokafka producer sends a simulated
# job's records at a steady rate, then an idle minute follows.
#
#   scripts/s3-requests.sh BROKER [RATE] [SECONDS] [-- extra `sundial project` args]
#
# BROKER is a running Tansu broker (e.g. 127.0.0.1:9092; its CLI creates the topic);
# RATE records/s (1000) for SECONDS (60). Needs moto[server] and aiokafka
# (scripts/ensure-tools.sh installs both) and a release build of sundial
# ($SUNDIAL, default ${CARGO_TARGET_DIR:-target}/release/sundial); extra
# `sundial serve` arguments in $SERVE_ARGS.
# Prints request counts per minute, by method and object, while records
# flow, while the job is idle, and while a `sundial serve` follows it.
set -euo pipefail
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

broker=${1:?usage: $0 BROKER [RATE] [SECONDS] [-- project args]}
rate=${2:-1000}
secs=${3:-60}
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
sundial=${SUNDIAL:-${CARGO_TARGET_DIR:-$here/target}/release/sundial}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
job="s3req$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_ALLOW_HTTP=true
for _ in $(seq 50); do curl -s -o /dev/null "$AWS_ENDPOINT_URL" && break; sleep 0.1; done
curl -s -X PUT "$AWS_ENDPOINT_URL/sundial" >/dev/null

"$sundial" simulate --job "$job" --scenario realistic --events $((rate * secs)) >"$work/job.ndjson"
python3 - "$work/job.ndjson" "$work/job.records" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as out:
    for line in f:
        line = line.rstrip(b"\n")
        if line:
            out.write(struct.pack(">I", 0xFFFFFFFF) + struct.pack(">I", len(line)) + line)
EOF

tansu topic create --broker "tcp://$broker" --partitions 1 "${job}_state" >/dev/null
"$sundial" project --job "$job" --brokers "$broker" --storage s3://sundial/d \
  --http none --exit-after-end-secs 0 "$@" >"$work/project.log" 2>&1 &
project=$!
pids+=($project)
sleep 3
by_kind() { # requests in moto.log lines $1..$2 (1-based, inclusive)
  sed -n "$1,$2p" "$work/moto.log" | grep -a '"\(PUT\|GET\|HEAD\) ' |
    awk -v m="$3" '{ split($7, p, "?"); n = split(p[1], a, "/");
      k = (a[n] ~ /^[0-9]+\.(sst|manifest|compactions)$/) ? a[n-1] : a[n];
      if (p[2] != "") k = "list"; c[$6 " " k]++ }
      END { for (x in c) printf "  %-32s %7.1f\n", substr(x, 2), c[x] * 60 / m }' | sort
}
start=$(($(wc -l <"$work/moto.log") + 1))
t0=$(date +%s.%N)
python3 "$here/tests/tools/produce.py" --brokers "$broker" --topic "${job}_state" \
  --records "$work/job.records" --rate "$rate" >/dev/null
t1=$(date +%s.%N)
busy_end=$(wc -l <"$work/moto.log")
sleep 60
idle_end=$(wc -l <"$work/moto.log")
# A history server following the live attempt: its page loaded every 2 s.
http="127.0.0.1:$((port + 1))"
# shellcheck disable=SC2086  # $SERVE_ARGS: extra `sundial serve` args, split
"$sundial" serve --storage s3://sundial/d --http "$http" ${SERVE_ARGS:-} >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://$http/api/jobs" && break; sleep 0.1; done
follow_start=$(($(wc -l <"$work/moto.log") + 1))
for _ in $(seq 30); do curl -s -o /dev/null "http://$http/api/jobs/$job"; sleep 2; done
follow_end=$(wc -l <"$work/moto.log")
kill -INT "$project"
wait "$project" || true
busy=$(echo "$t1 - $t0" | bc)
echo "requests per minute while $rate records/s flow (${busy%.*} s), project args: ${*:-(defaults)}"
by_kind "$start" "$busy_end" "$busy"
echo "requests per minute while idle (60 s)"
by_kind $((busy_end + 1)) "$idle_end" 60
echo "requests per minute while idle and a serve follows the job, its page loaded every 2 s (60 s), serve args: ${SERVE_ARGS:-(defaults)}"
by_kind "$follow_start" "$follow_end" 60
