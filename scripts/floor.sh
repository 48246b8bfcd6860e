#!/usr/bin/env bash
# The floor for the scale benchmark: the network of an N-pod lab (a router with two bridges,
# two nodes with cbr0, a client, N pods on veth pairs, their addresses and routes) made and
# deleted by flat iproute2 batches, with nothing else: no validation, no state, no rules, no
# workloads, no readiness wait. One host-level `ip -batch` creates the namespaces and veth
# pairs, one `ip -n NS -batch` per namespace configures it, one `ip -batch` deletes them all.
#
#   sudo bash scripts/floor.sh 100        (inside scripts/isolated.sh on a shared machine)
set -euo pipefail
n=${1:-100}
p="floor$$"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

pod_ip() { # node (0|1), index on that node -> address in the node's /22
  local off=$(( $2 + 2 ))
  echo "10.244.$(( $1 * 4 + off / 256 )).$(( off % 256 ))"
}

{
  for h in router node1 node2 client; do echo "netns add $p-$h"; done
  echo "link add name eth0 netns $p-node1 type veth peer name p-node1 netns $p-router"
  echo "link add name eth0 netns $p-node2 type veth peer name p-node2 netns $p-router"
  echo "link add name eth0 netns $p-client type veth peer name p-client netns $p-router"
  for i in $(seq 1 "$n"); do
    echo "netns add $p-web-$i"
    echo "link add name eth0 netns $p-web-$i type veth peer name veth-web-$i netns $p-node$(( (i - 1) % 2 + 1 ))"
  done
} > "$dir/create"
{
  echo "link add br-nodes type bridge"; echo "addr add 10.240.0.1/24 dev br-nodes"
  echo "link add br-clients type bridge"; echo "addr add 10.241.0.1/24 dev br-clients"
  for h in node1 node2; do echo "link set p-$h master br-nodes"; echo "link set p-$h up"; done
  echo "link set p-client master br-clients"; echo "link set p-client up"
  echo "link set br-nodes up"; echo "link set br-clients up"
  echo "route add 10.244.0.0/22 via 10.240.0.4"; echo "route add 10.244.4.0/22 via 10.240.0.5"
} > "$dir/$p-router"
for k in 1 2; do
  {
    echo "link set lo up"; echo "addr add 10.240.0.$(( k + 3 ))/24 dev eth0"; echo "link set eth0 up"
    echo "link add cbr0 type bridge"; echo "addr add 10.244.$(( (k - 1) * 4 )).1/22 dev cbr0"; echo "link set cbr0 up"
    for i in $(seq "$k" 2 "$n"); do echo "link set veth-web-$i master cbr0"; echo "link set veth-web-$i up"; done
    echo "route add 10.241.0.0/24 via 10.240.0.1"
  } > "$dir/$p-node$k"
done
printf 'link set lo up\naddr add 10.241.0.4/24 dev eth0\nlink set eth0 up\nroute add 10.240.0.0/24 via 10.241.0.1\nroute add 10.244.0.0/16 via 10.241.0.1\n' > "$dir/$p-client"
for i in $(seq 1 "$n"); do
  node=$(( (i - 1) % 2 ))
  printf 'link set lo up\naddr add %s/22 dev eth0\nlink set eth0 up\nroute add 10.240.0.0/16 via 10.244.%d.1\n' \
    "$(pod_ip "$node" $(( (i - 1) / 2 )))" $(( node * 4 )) > "$dir/$p-web-$i"
done

ip -batch "$dir/create"
for f in "$dir/$p"-*; do ip -n "$(basename "$f")" -batch "$f"; done
ls "$dir" | grep "^$p-" | sed 's/^/netns del /' | ip -force -batch -
