#!/usr/bin/env bash
# Regenerates the recorded streams of every fixture from the simulator (fixed
# seeds: same bytes every time). Expected views are regenerated separately by
# `UPDATE_GOLDEN=1 cargo test --test golden` and must be reviewed before commit.
set -euo pipefail
cd "$(dirname "$0")"
bin=${SUNDIAL_BIN:-../target/release/sundial}
"$bin" simulate --job fx_autoscale --scenario autoscale --events 6000 --seed 7 --output autoscale-completed/events.ndjson
"$bin" simulate --job fx_storm --scenario exception-storm --events 6000 --seed 11 --output exception-storm-failed/events.ndjson
"$bin" simulate --job fx_lineage --scenario lineage --events 58000 --seed 13 --output - | gzip -9n > lineage-50k/events.ndjson.gz
python3 solstice.py
"$bin" simulate --job fx_msgpack --scenario realistic --events 6000 --seed 17 --format msgpack --output msgpack-realistic/events.msgpack
