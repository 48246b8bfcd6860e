#!/usr/bin/env bash
# Run a command with a private /run/netns, lab state folder (/run/kube-packet-lab), /etc/netns
# and pid namespace, so its labs never meet another run's labs of the same name on this kernel,
# and every namespace and process it made is gone when it ends. For benchmarks and test runs on a
# machine shared with other work:
#   sudo bash scripts/isolated.sh npx vitest run test/e2e/nodeport.test.ts
#   sudo bash scripts/isolated.sh node dist/scripts/bench.js scale 3
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: isolated.sh <command> [args...]" >&2; exit 2; }
exec unshare --mount --pid --fork --mount-proc --propagation private bash -c '
mkdir -p /run/netns /run/kube-packet-lab /etc/netns
mount -t tmpfs lab-netns /run/netns
mount -t tmpfs lab-state /run/kube-packet-lab
mount -t tmpfs lab-etc-netns /etc/netns
exec "$@"' isolated "$@"
