#!/usr/bin/env bash
# Put `lab` on PATH: a small launcher in /usr/local/bin (or $LAB_BIN_DIR) that runs this
# checkout's compiled CLI with the node found now. Run by scripts/install.sh and the Dockerfile,
# after the build. Why /usr/local/bin: it is on every login's PATH, and in the secure_path of
# Debian's and Ubuntu's sudoers, so `lab …` and `sudo lab …` both work from any directory.
# Why a launcher and not a bare symlink: sudo's secure_path may lack the node that
# `#!/usr/bin/env node` would look for (nvm, a tarball in /opt); the absolute path does not.
#   sudo bash scripts/install-command.sh                 # /usr/local/bin/lab
#   LAB_BIN_DIR=/tmp/bin bash scripts/install-command.sh # elsewhere (the tests do)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
cli="$root/dist/lab/cli/main.js"
bin_dir=${LAB_BIN_DIR:-/usr/local/bin}

[ -f "$cli" ] || { echo "install-command.sh: $cli is missing: run npm run build first" >&2; exit 3; }
node_bin=$(command -v node) || { echo "install-command.sh: no node on PATH" >&2; exit 3; }
node_bin=$(readlink -f "$node_bin")

mkdir -p "$bin_dir"
tmp=$(mktemp "$bin_dir/.lab.XXXXXX")
{
  echo '#!/bin/sh'
  echo "# kube-packet-lab launcher, written by $root/scripts/install-command.sh"
  printf 'exec %q %q "$@"\n' "$node_bin" "$cli"
} >"$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$bin_dir/lab"
# package.json's bin (npm link, npx) runs main.js directly: keep it executable too.
chmod 0755 "$cli"
echo "lab -> $bin_dir/lab (node $node_bin, $cli)"
