#!/usr/bin/env bash
# Install everything kube-packet-lab needs on a fresh Debian or Ubuntu machine, then
# build the project. With --demo, also bring up the NodePort lab and verify it.
#   sudo bash scripts/install.sh          # install only
#   sudo bash scripts/install.sh --demo   # install, lab up nodeport, lab verify nodeport
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo bash scripts/install.sh)" >&2
  exit 3
fi

# Debian packages: the kernel tools the lab drives, and Node.js when the machine has none.
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iptables-restore >/dev/null || need+=(iptables)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v conntrack >/dev/null || need+=(conntrack)
command -v nft >/dev/null || need+=(nftables)
command -v curl >/dev/null || need+=(curl)
command -v nsenter >/dev/null || need+=(util-linux)
command -v nft >/dev/null || need+=(nftables)              # lab trace (nftables mode, and tidying iptables mode)
command -v chromium >/dev/null || need+=(chromium)          # the test suite opens report.html in a real browser
command -v sysctl >/dev/null || need+=(procps)
command -v bird >/dev/null || need+=(bird2)                # podNetwork mode bgp: BIRD in every node and router
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "install.sh: Node.js $(node --version) is too old; kube-packet-lab needs 18.19 or newer" >&2
  exit 3
fi

if [ "$node_major" -lt 20 ]; then
  echo "install.sh: note: Node.js $(node --version) runs the lab; the test suite (npm test) needs Node.js 20 or newer" >&2
fi

# npm dependencies, exactly as locked; `prepare` compiles the TypeScript to dist/.
echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error

# `lab` on PATH, for `lab …` and `sudo lab …` from any directory (the hints the lab prints say `lab …`).
echo "==> lab on PATH"
bash scripts/install-command.sh

if [ "${1:-}" = "--demo" ]; then
  echo "==> lab up nodeport"
  lab down nodeport >/dev/null 2>&1 || true
  lab up nodeport
  echo "==> lab verify nodeport"
  lab verify nodeport
  echo "The lab is still up: look around with 'sudo lab rules nodeport node1', then 'sudo lab down nodeport'."
fi
