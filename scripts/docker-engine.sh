#!/usr/bin/env bash
# A Docker engine for kube-packet-lab on a CI machine that has no registry access.
#
#   1. installs docker.io and debootstrap if they are missing;
#   2. starts dockerd in the background if no engine answers, with
#      --iptables=false --ip6tables=false --bridge=none so that Docker adds no
#      iptables rules and no docker0 bridge to the host's network namespace
#      (the lab container runs with NetworkMode none: it needs neither);
#   3. builds the offline base image kube-packet-lab-base:bookworm from
#      debootstrap + docker import, if that image does not exist yet;
#   4. builds kube-packet-lab-debian:bookworm, a plain debootstrap minbase bookworm with
#      nothing added, if it does not exist yet: the "fresh machine" on which
#      test/e2e/provision.test.ts runs scripts/provision.sh (what the Vagrantfile runs).
#
# Idempotent: a second run finds everything in place and returns in well under a second.
# Then: LAB_DOCKER_BASE=kube-packet-lab-base:bookworm lab docker up nodeport
#
# Environment:
#   LAB_BASE_IMAGE   tag of the base image to build (default kube-packet-lab-base:bookworm)
#   LAB_CLEAN_IMAGE  tag of the plain bookworm image (default kube-packet-lab-debian:bookworm)
#   LAB_DEBIAN_MIRROR  mirror for debootstrap (default http://deb.debian.org/debian)
#   DOCKERD_LOG      where dockerd logs go (default /var/log/kube-packet-lab-dockerd.log)
#   DOCKER_WAIT      seconds to wait for dockerd to answer (default 60)
set -euo pipefail

BASE_IMAGE=${LAB_BASE_IMAGE:-kube-packet-lab-base:bookworm}
CLEAN_IMAGE=${LAB_CLEAN_IMAGE:-kube-packet-lab-debian:bookworm}
# debootstrap's package cache, shared by both images: the second one downloads nothing.
DEBOOTSTRAP_CACHE=/var/cache/kube-packet-lab/debootstrap
MIRROR=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/kube-packet-lab-dockerd.log}
DOCKER_WAIT=${DOCKER_WAIT:-60}
SOCKET=/var/run/docker.sock
# What the lab runs inside the container (see lab/kernel/preflight.ts), plus what the
# image build and a shell need. libstdc++6 is for a node binary copied from the host.
PACKAGES=ca-certificates,iproute2,iptables,nftables,tcpdump,conntrack,curl,procps,util-linux,bird2,less,libstdc++6

say() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (installs packages, starts dockerd)"

# --- 1. packages ------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

# --- 2. engine ----------------------------------------------------------------
# Readiness is the API's own /_ping over the socket: independent of the docker CLI's version.
ping() { curl -fsS --max-time 2 --unix-socket "$SOCKET" http://localhost/_ping >/dev/null 2>&1; }

if ping; then
  say "dockerd already answers on $SOCKET"
else
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but not answering yet; waiting"
  else
    say "starting dockerd (no iptables rules, no bridge on the host), log in $DOCKERD_LOG"
    # setsid + nohup: the engine outlives this script and the CI step that ran it.
    setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
      >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 $((DOCKER_WAIT * 4))); do
    ping && break
    sleep 0.25
  done
  ping || die "dockerd did not answer on $SOCKET within ${DOCKER_WAIT}s; see $DOCKERD_LOG"
  say "dockerd answers on $SOCKET"
fi

# debootstrap into a fresh folder; prints the folder. The caller removes it with remove_rootfs.
make_rootfs() {
  local rootfs
  rootfs=$(mktemp -d /tmp/kube-packet-lab-rootfs.XXXXXX)
  mkdir -p "$DEBOOTSTRAP_CACHE"
  debootstrap --variant=minbase --cache-dir="$DEBOOTSTRAP_CACHE" ${1:+--include="$1"} bookworm "$rootfs" "$MIRROR" \
    >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed (full log: $rootfs.log)"; }
  rm -f "$rootfs.log"
  echo "$rootfs"
}
remove_rootfs() {
  # debootstrap mounts proc/sys (and sometimes /dev) in the target: never delete through a mount.
  awk -v r="$1/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l || true
  rm -rf --one-file-system "$1"
}
rootfs=
trap '[ -z "$rootfs" ] || remove_rootfs "$rootfs"' EXIT

# --- 4. the plain bookworm image (built first: the base image's step may end the script) ---
if docker image inspect "$CLEAN_IMAGE" >/dev/null 2>&1; then
  say "plain image $CLEAN_IMAGE exists"
else
  say "debootstrap --variant=minbase bookworm for $CLEAN_IMAGE (nothing added)"
  start=$(date +%s)
  rootfs=$(make_rootfs "")
  # As debootstrap leaves it, less its package downloads: apt has no lists yet, as on a new machine.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message 'plain debootstrap minbase bookworm: a fresh machine for the provisioning test' \
    - "$CLEAN_IMAGE" >/dev/null
  remove_rootfs "$rootfs"
  rootfs=
  say "plain image $CLEAN_IMAGE built in $(($(date +%s) - start)) s"
fi

# --- 3. offline base image -----------------------------------------------------
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "base image $BASE_IMAGE exists"
  exit 0
fi

# The image needs node >= 18.19 and npm. The host's node (if recent enough) is copied in:
# Debian's own npm package would pull in hundreds of node-* packages and minutes of download.
host_node=$(command -v node || true)
host_npm_dir=/usr/lib/node_modules/npm
copy_node=no
if [ -n "$host_node" ] && [ -d "$host_npm_dir" ] &&
  "$host_node" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>18||(a===18&&b>=19)?0:1)'; then
  copy_node=yes
else
  # bookworm's nodejs is 18.20.x: recent enough.
  PACKAGES="$PACKAGES,nodejs,npm"
fi

say "debootstrap --variant=minbase bookworm (takes about a minute)"
start=$(date +%s)
rootfs=$(make_rootfs "$PACKAGES")

if [ "$copy_node" = yes ]; then
  say "copying host node $("$host_node" --version) and npm into the image"
  install -m 0755 "$(readlink -f "$host_node")" "$rootfs/usr/bin/node"
  mkdir -p "$rootfs/usr/lib/node_modules"
  cp -a "$host_npm_dir" "$rootfs/usr/lib/node_modules/"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/bin/npx"
fi

# Trust what the host trusts: where egress goes through a TLS-inspecting proxy, its CA
# (installed on the host under /usr/local/share/ca-certificates) is what lets npm ci in
# the image build reach the registry. Public certificates only, never keys.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  say "adding the host's local CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi

# Keep the image small and its apt state clean.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
chroot "$rootfs" /usr/bin/node --version >/dev/null || die "node does not run in the new root file system"

say "docker import -> $BASE_IMAGE"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["bash"]' \
  --message 'kube-packet-lab offline base: debootstrap minbase bookworm' \
  - "$BASE_IMAGE" >/dev/null
say "base image $BASE_IMAGE built in $(($(date +%s) - start)) s"
