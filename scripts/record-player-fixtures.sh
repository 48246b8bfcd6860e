#!/usr/bin/env bash
# Re-record the player's browser-test fixtures (test/fixtures/runs/player/<scenario>-<mode>): one
# real verify run of every built-in scenario in both proxy modes, keeping its evidence.json and
# pcaps (trimmed to the SYN and SYN-ACK packets the player walks, scripts/trim-pcap.py). Needs root and a build (dist/); runs each lab inside scripts/isolated.sh:
#   bash scripts/record-player-fixtures.sh [scenario-mode ...]   (default: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
out=test/fixtures/runs/player
runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  for f in topologies/*.yaml; do
    s=$(basename "$f" .yaml)
    case "$s" in *.walkthrough|*.workshop) continue ;; esac
    runs+=("$s-iptables" "$s-nftables")
  done
fi
for run in "${runs[@]}"; do
  scenario=${run%-*}
  mode=${run##*-}
  tmp=$(mktemp -d)
  echo "recording $run" >&2
  bash scripts/isolated.sh bash -c '
    node dist/lab/cli/main.js up "$1" --set kubeProxy.mode="$2" >/dev/null 2>"$3/up.log" || { cat "$3/up.log" >&2; exit 1; }
    status=0
    node dist/lab/cli/main.js verify "$1" --out "$3/run" >"$3/verify.txt" 2>"$3/verify.log" || status=$?
    node dist/lab/cli/main.js down "$1" >/dev/null 2>&1 || true
    tail -1 "$3/verify.txt" >&2
    exit $status' isolated "$scenario" "$mode" "$tmp" || echo "verify of $run did not pass: kept anyway, re-record it" >&2
  rm -rf "${out:?}/$run"
  mkdir -p "$out/$run"
  cp "$tmp/run/evidence.json" "$tmp"/run/*.pcap "$out/$run/"
  python3 scripts/trim-pcap.py "$out/$run"/*
  rm -rf "$tmp"
done
