#!/usr/bin/env bash
# The passivity classification of a 2,000-route change, every route touched (issue #17's
# benchmark: goal <= 50 ms). Release build of the api crate's example; prints median and max.
#
# Usage: bash bench/versioning/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --quiet --release -p gatehouse-api --example classify_bench -- "${1:-20}"
