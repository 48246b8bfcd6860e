#!/usr/bin/env bash
# Check the Vagrantfile without a VM provider: installs vagrant with apt-get when it is
# missing (needs root then), and runs `vagrant validate` in the project folder.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v vagrant >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "vagrant-validate: vagrant is not installed; run as root to install it (apt-get install vagrant)" >&2
    exit 3
  fi
  echo "vagrant-validate: installing vagrant" >&2
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  { apt-get update -q && apt-get install -y -q vagrant; } >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; echo "vagrant-validate: apt-get install vagrant failed" >&2; exit 3; }
  rm -f "$log"
fi

# validate reads the Vagrantfile and checks its settings; it needs no box and no provider.
# Its own files (boxes, plugins, checkpoint) stay out of the user's home.
export VAGRANT_CHECKPOINT_DISABLE=1
export VAGRANT_HOME="${VAGRANT_HOME:-${TMPDIR:-/tmp}/kube-packet-lab-vagrant-home}"
# validate makes a .vagrant/ folder in the project: remove it again if it was not there.
[ -e .vagrant ] || trap 'rm -rf .vagrant' EXIT
vagrant validate
