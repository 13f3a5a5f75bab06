#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then
# runs formatting and lint checks and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sundial-target}"
export CARGO_TERM_COLOR=never

command -v cargo >/dev/null || { echo "cargo is required (rustup.rs)"; exit 1; }
bash scripts/ensure-tools.sh

python3 scripts/check-layers.py
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
status=0
log=$(mktemp "${TMPDIR:-/tmp}/sundial-test.XXXXXX.log")
cargo test --workspace --quiet --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line with the totals of every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
