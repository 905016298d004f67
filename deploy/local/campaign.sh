#!/usr/bin/env bash
# Runs one campaign as N shards on this machine, then merges their reports:
# the flow of deploy/k8s (an Indexed Job) and deploy/slurm (an array job),
# with local processes. Each shard is told its index the way a Kubernetes
# Indexed Job tells a pod (JOB_COMPLETION_INDEX) and the count by
# `--shards N`; the shards' reports go to OUT/shard-K, the merged one to
# OUT/merged.
#
# Usage: deploy/local/campaign.sh N OUT [campaign options...]
#   e.g. deploy/local/campaign.sh 4 reports/local --time 10m --faults all --jobs 1
#
# SIM names the sim binary to run (default: built here with
# `cargo build --release`, then target/release/sim). Exits with the
# merge's status: 0 no violation, 1 violations (see OUT/merged/report.md),
# 2 a shard or the merge could not run.
set -euo pipefail

if [ $# -lt 2 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
shards=$1
out=$2
shift 2

if [ -z "${SIM:-}" ]; then
    root="$(cd "$(dirname "$0")/../.." && pwd)"
    (cd "$root" && cargo build --release --quiet --package sim --bin sim)
    SIM="${CARGO_TARGET_DIR:-$root/target}/release/sim"
fi

mkdir -p "$out"
pids=()
for ((k = 0; k < shards; k++)); do
    JOB_COMPLETION_INDEX=$k "$SIM" campaign --shards "$shards" "$@" \
        --report "$out/shard-$k" >"$out/shard-$k.log" 2>&1 &
    pids+=($!)
done

# A shard exits 1 when it found a violation: that is for the merged report
# to say. Any other failure means a shard did not run.
failed=0
for ((k = 0; k < shards; k++)); do
    status=0
    wait "${pids[$k]}" || status=$?
    if [ "$status" -gt 1 ]; then
        echo "shard $k/$shards failed (status $status); its output:" >&2
        cat "$out/shard-$k.log" >&2
        failed=1
    fi
done
if [ "$failed" -ne 0 ]; then
    exit 2
fi

dirs=()
for ((k = 0; k < shards; k++)); do
    dirs+=("$out/shard-$k")
done
exec "$SIM" report merge "${dirs[@]}" --out "$out/merged"
