#!/usr/bin/env bash
# Provision a fresh Debian machine for kube-packet-lab: what the Vagrantfile runs in its VM,
# and what test/e2e/provision.test.ts runs in a clean bookworm container to prove it.
#   sudo bash scripts/provision.sh [--demo]    # arguments go to scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Bridge netfilter: same-node pod -> service -> pod traffic goes through kube-proxy's rules
# only when bridged packets visit iptables. Loaded now (unless it already is: a container
# cannot load modules, its host kernel must have it) and at every boot.
if [ ! -d /proc/sys/net/bridge ]; then
  modprobe br_netfilter
fi
mkdir -p /etc/modules-load.d
echo br_netfilter >/etc/modules-load.d/kube-packet-lab.conf

bash scripts/install.sh "$@"
