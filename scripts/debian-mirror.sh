#!/usr/bin/env bash
# A partial Debian bookworm mirror on disk: exactly the packages that PACKAGE... pull into a
# system whose dpkg status file is STATUS, laid out as the archive lays them out and served
# with the archive's own signed InRelease and Packages.xz, so apt in a container with no
# network (`deb file:/MOUNT bookworm main`) installs them with its usual signature checks.
#
#   sudo bash scripts/debian-mirror.sh STATUS DIR PACKAGE...
#
# The provisioning test uses it: a clean bookworm container runs scripts/install.sh unchanged
# and its `apt-get update` / `apt-get install` read this mirror instead of the network.
# DIR is a cache: packages already downloaded are not downloaded again. The mirror itself is
# DIR/debian; the script prints that path on stdout.
#
# Environment:
#   LAB_DEBIAN_MIRROR  where to download from (default: the host's own apt source for bookworm)
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 STATUS DIR PACKAGE..." >&2; exit 2; }
status=$(readlink -f "$1")
dir=$2
shift 2
[ -f "$status" ] || { echo "debian-mirror: no dpkg status file at $status" >&2; exit 2; }

suite=bookworm
arch=$(dpkg --print-architecture)
upstream=${LAB_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' "Codename: $suite" 'Label: Debian' 'Origin: Debian' 2>/dev/null | sort -u | head -n1)}
upstream=${upstream%/}
[ -n "$upstream" ] || { echo "debian-mirror: the host has no apt source for Debian $suite; set LAB_DEBIAN_MIRROR" >&2; exit 3; }

mkdir -p "$dir"
dir=$(readlink -f "$dir")
mirror=$dir/debian
mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/none/partial"
echo "deb $upstream $suite main" >"$dir/sources.list"

# apt with its own lists and archive cache, judging against the target's installed packages
# (not the host's), and the host's apt configuration otherwise (proxies, certificates).
apt_target() {
  apt-get -q \
    -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
    -o Dir::State::Lists="$dir/lists" -o Dir::State::status="$status" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o Acquire::GzipIndexes=false -o APT::Get::List-Cleanup=false "$@"
}

apt_target update >"$dir/update.log" 2>&1 || { cat "$dir/update.log" >&2; exit 4; }
apt_target install --download-only -y --no-install-recommends -o Dir::Cache::archives="$dir/archives" "$@" \
  >"$dir/download.log" 2>&1 || { tail -n 20 "$dir/download.log" >&2; exit 4; }

# Where each package lives in the archive: --print-uris against an empty cache lists them all.
apt_target install --print-uris -qq -y --no-install-recommends -o Dir::Cache::archives="$dir/none" "$@" >"$dir/uris"

rm -rf "$mirror/dists" "$mirror/pool"
mkdir -p "$mirror/dists/$suite/main/binary-$arch"
while read -r uri file _; do
  uri=${uri//\'/}
  rel=${uri#"$upstream"/}
  rel=$(printf '%b' "${rel//%/\\x}") # the URI is percent-encoded; the Packages file's Filename is not
  mkdir -p "$mirror/$(dirname "$rel")"
  ln -f "$dir/archives/$file" "$mirror/$rel"
done <"$dir/uris"

# The indexes, byte for byte as the archive signed them. apt keeps the InRelease it verified;
# each index that InRelease names is fetched by its hash, so they always match.
list_prefix=$(echo "${upstream#*://}" | tr / _)_dists_${suite}
cp "$dir/lists/${list_prefix}_InRelease" "$mirror/dists/$suite/InRelease"
for index in "main/binary-$arch/Packages.xz" main/i18n/Translation-en.xz; do
  sha=$(awk -v f="$index" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' "$mirror/dists/$suite/InRelease")
  [ -n "$sha" ] || { echo "debian-mirror: InRelease names no $index" >&2; exit 4; }
  cached=$dir/indexes/$sha
  if [ ! -f "$cached" ]; then
    mkdir -p "$dir/indexes"
    /usr/lib/apt/apt-helper download-file "$upstream/dists/$suite/$(dirname "$index")/by-hash/SHA256/$sha" \
      "$cached.part" "SHA256:$sha" >"$dir/index.log" 2>&1 || { cat "$dir/index.log" >&2; exit 4; }
    mv "$cached.part" "$cached"
  fi
  mkdir -p "$mirror/dists/$suite/$(dirname "$index")"
  ln -f "$cached" "$mirror/dists/$suite/$index"
done

echo "$mirror"
