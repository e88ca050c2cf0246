#!/usr/bin/env bash
# Makes the README's pictures of `podwirectl node show --svg`, `trace` and `path`: a node in a
# throwaway netns with three pods on a podwire bridge (one broken behind podwire's back, plus an
# allocation nobody holds), an uplink with the default route, and a VXLAN peer node as
# multi-node routing sets one up. Writes docs/node-show.svg, docs/node-show.png (needs
# rsvg-convert, Debian's librsvg2-bin) and docs/inspect-output.txt; removes everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (it makes network namespaces)" >&2; exit 1; }

cargo build --quiet -p podwirectl -p podwire-bridge
TARGET="$(realpath "${CARGO_TARGET_DIR:-target}/debug")"
DIR="$(mktemp -d /tmp/podwire-shots.XXXXXX)"
NODE="pwshot-node-$$"
PODS=()
cleanup() {
    for p in "${PODS[@]}"; do ip netns del "$p" 2>/dev/null || true; done
    ip netns del "$NODE" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

mkdir -p "$DIR/net.d"
cat >"$DIR/net.d/10-podwire.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "k8s-pod-network", "plugins": [{
  "type": "podwire", "bridge": "cni0", "isDefaultGateway": true, "ipMasq": true,
  "logFile": "$DIR/podwire.log",
  "ipam": {"type": "podwire-ipam", "ranges": [[{"subnet": "10.244.1.0/24"}]], "dataDir": "$DIR/ipam"}}]}
EOF
ip netns add "$NODE"
n() { ip -n "$NODE" "$@"; }
n link set lo up
n link add eth0 type veth peer name eth0-peer
n link set eth0-peer up
n link set eth0 up
n addr add 192.168.56.11/24 dev eth0
n route add default via 192.168.56.1 dev eth0
n link add podwire.vxlan type vxlan id 1 dstport 8472 local 192.168.56.11 nolearning dev eth0
n link set podwire.vxlan up
ip netns exec "$NODE" bridge fdb append 0a:58:0a:f4:02:00 dev podwire.vxlan dst 192.168.56.12
n neigh replace 10.244.2.0 lladdr 0a:58:0a:f4:02:00 dev podwire.vxlan nud permanent
n route add 10.244.2.0/24 via 10.244.2.0 dev podwire.vxlan onlink proto 157

ctl() {
    ip netns exec "$NODE" env NETCONFPATH="$DIR/net.d" CNI_PATH="$TARGET" CNI_CACHE_DIR="$DIR/cache" \
        "$TARGET/podwirectl" "$@"
}
declare -A CID
for name in web db cache; do
    ns="pwshot-$name-$$"
    ip netns add "$ns"
    PODS+=("$ns")
    CID[$name]="$(printf '%s' "$name-$$" | sha256sum | cut -c1-64)"
    ctl add k8s-pod-network "$ns" --container-id "${CID[$name]}" >/dev/null
done
# Break "cache": its veth goes behind podwire's back. And an allocation nobody holds.
veth=$(ctl node show --json | jq -r --arg c "${CID[cache]}" '.networks[0].pods[] | select(.containerID==$c) | .hostVeth')
n link del "$veth"
printf '%s\r\neth0' "$(printf 'ghost' | sha256sum | cut -c1-64)" >"$DIR/ipam/k8s-pod-network/10.244.1.200"
ctl del k8s-pod-network "pwshot-db-$$" --container-id "${CID[db]}" >/dev/null
ADD_OUT="$(ctl add k8s-pod-network "pwshot-db-$$" --container-id "${CID[db]}")"

OUT=docs/inspect-output.txt
{
    echo "\$ podwirectl add k8s-pod-network pwshot-db --container-id ${CID[db]:0:12}…"
    echo "$ADD_OUT"
    echo
    echo "\$ podwirectl node show"
    ctl node show --svg docs/node-show.svg
    echo
    echo "\$ podwirectl trace ${CID[db]:0:12}"
    ctl trace "${CID[db]:0:12}"
    echo "\$ podwirectl path ${CID[web]:0:12} ${CID[db]:0:12}"
    ctl path "${CID[web]:0:12}" "${CID[db]:0:12}"
    echo
    echo "\$ podwirectl path ${CID[web]:0:12} 10.244.2.7"
    ctl path "${CID[web]:0:12}" 10.244.2.7
    echo
    echo "\$ podwirectl path ${CID[web]:0:12} 1.1.1.1"
    ctl path "${CID[web]:0:12}" 1.1.1.1
} | sed -e "s#$DIR#/tmp/demo#g" -e "s#$TARGET#/opt/cni/bin#g" -e "s#-$$##g" -e "s/[[:space:]]*$//" >"$OUT"
sed -i -e "s#$DIR#/tmp/demo#g" -e "s#-$$##g" docs/node-show.svg
rsvg-convert -w 1400 -b white docs/node-show.svg -o docs/node-show.png
echo "wrote docs/node-show.svg, docs/node-show.png, $OUT"
