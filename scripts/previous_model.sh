#!/usr/bin/env bash
# The IdGlow model shipped before the current one (8,000 constant-gate SFT steps + DPO), as it was in assets/idglow at
# commit dbb014e, written to runs/idglow-8k-dpo (git keeps its weights). The issue-19 chains under benchmarks/results/
# start from that model; assets/idglow now holds its successor.
#   scripts/previous_model.sh     # prints the folder
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/idglow-8k-dpo
if [ ! -d "$out" ]; then
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  git archive dbb014e assets/idglow | tar -x -C "$out.tmp" --strip-components=2
  mv "$out.tmp" "$out"
fi
echo "$out"
