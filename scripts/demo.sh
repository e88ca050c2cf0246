#!/usr/bin/env bash
# The talk's demo, with containerd's CRI standing in for kubelet: a private containerd whose CNI
# config is a podwire conflist runs two pods (`kubectl run test --image=busybox`, twice), shows each
# pod's IP and routes, pings one from the other, prints podwire's log for those ADDs, and removes
# everything again. Nothing of the system's containerd or CNI config is touched; all of it lives in
# one temporary directory, and the EXIT trap stops containerd (by PID) and removes it. Then three
# simulated nodes are made one pod network by podwire's agent (direct routes and VXLAN).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-host.sh
prepare_host

# Only what the demo runs. The four plugins as shipped (the `plugin` profile: static, what the
# benchmarks measure; scripts/test.sh reuses them) into target/release, where the containerd part's
# CNI bin dir is filled from. The CRI driver, the cluster and what it execs on its nodes (the
# agent, podwirectl, the plugins; one cargo call each, as tests/cluster builds them) on the
# `quick` profile: unoptimised, so kube's and tonic's stacks build in a third of the time.
echo "podwire demo: building (the plugins as shipped; podwire-cri, podwire-cluster-demo, podwirectl)"
link_plugins_static
quick() { cargo build --profile quick --quiet "$@"; }
quick -p podwire-runtime-tests --bin podwire-cri -p podwire-cluster-tests --bin podwire-cluster-demo
quick -p podwirectl --bin podwirectl
quick -p podwire-bridge --bin podwire
quick -p podwire-ipam --bin podwire-ipam
quick -p podwire-portmap --bin podwire-portmap
TARGET="${CARGO_TARGET_DIR:-target}"
CRI="$(realpath "$TARGET/quick/podwire-cri")" # the CRI calls kubelet would make, one per command

DEMO="$(mktemp -d /tmp/podwire-demo.XXXXXX)"
cleanup() {
    "$CRI" teardown --dir "$DEMO" || true
    rm -rf "$DEMO"
}
trap cleanup EXIT

bold=$'\e[1m' reset=$'\e[0m'
[ -t 1 ] || bold='' reset=''
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$reset"; }
show() { printf '%s$ %s%s\n' "$bold" "$*" "$reset"; "$@"; }

step "1. Install podwire for a private containerd: CNI bin dir and conflist"
"$CRI" prepare --dir "$DEMO" --network podwire-demo --bridge pwdemo0 --subnet 10.253.2.0/24 \
    --gateway 10.253.2.1 >/dev/null
ls "$DEMO/cni/bin"
cat "$DEMO/cni/net.d/10-podwire.conflist"
echo
grep -A3 'cri".cni\]' "$DEMO/containerd.toml"

step "2. Start containerd $(containerd --version | awk '{print $3}') (own root, state and socket)"
# its own session: a Ctrl-C stops the demo, whose EXIT trap then removes the pods through containerd
setsid containerd --config "$DEMO/containerd.toml" >"$DEMO/containerd.log" 2>&1 &
echo $! >"$DEMO/containerd.pid"
"$CRI" wait --dir "$DEMO" # CRI reports NetworkReady; the locally built pause and busybox images are imported
ctr --address "$DEMO/containerd.sock" --namespace k8s.io images ls -q | grep -v '^sha256:'

step "3. kubelet's part: RunPodSandbox, then a busybox container in it (kubectl run test-N --image=busybox)"
declare -A POD CTR IP
for name in test-1 test-2; do
    POD[$name]=$("$CRI" runp --dir "$DEMO" "$name")
    CTR[$name]=$("$CRI" run --dir "$DEMO" "${POD[$name]}" "$name" "$name" localhost/podwire/busybox:e2e sleep 3600)
    IP[$name]=$("$CRI" inspectp --dir "$DEMO" "${POD[$name]}" | jq -r .ip)
    echo "pod $name: sandbox ${POD[$name]:0:12}, container ${CTR[$name]:0:12}, PodSandboxStatus IP ${IP[$name]}"
done

step "4. Each pod's IP and routes, as its busybox sees them"
for name in test-1 test-2; do
    echo "-- $name (${IP[$name]})"
    "$CRI" exec --dir "$DEMO" "${CTR[$name]}" ip -4 addr show eth0
    "$CRI" exec --dir "$DEMO" "${CTR[$name]}" ip route
done

step "5. Traffic: test-1 pings test-2, the host pings test-1 through the bridge"
"$CRI" exec --dir "$DEMO" "${CTR[test-1]}" ping -c 3 "${IP[test-2]}"
show ping -c 1 -W 3 "${IP[test-1]}"

step "6. podwire's log for those ADDs ($DEMO/podwire.log), and the results containerd cached"
short_ids() { sed -E "s/([0-9a-f]{12})[0-9a-f]{52}/\1…/g; s|$DEMO|\$DEMO|g"; }
grep ' ADD ' "$DEMO/podwire.log" | short_ids
for name in test-1 test-2; do
    echo "-- $name: /var/lib/cni/results/podwire-demo-${POD[$name]:0:12}…-eth0"
    jq -c '.result | {ips, routes}' "/var/lib/cni/results/podwire-demo-${POD[$name]}-eth0"
done

step "7. Delete the pods (StopPodSandbox + RemovePodSandbox): podwire's DEL leaves nothing"
for name in test-1 test-2; do
    "$CRI" stopp --dir "$DEMO" "${POD[$name]}"
    "$CRI" rmp --dir "$DEMO" "${POD[$name]}"
done
grep ' DEL ' "$DEMO/podwire.log" | grep -c 'netns= ' | xargs echo "DELs without a netns (containerd's second DEL per pod):"
if "$CRI" leftovers --dir "$DEMO"; then
    echo "left on the host: no veth, no allocation, no nft rule, no cache entry"
else
    echo "podwire demo: the pods' teardown left the above behind" >&2
    exit 1
fi

step "8. Stop containerd and remove everything"
"$CRI" teardown --dir "$DEMO"

# Steps 9-14: the cluster view. Three node namespaces (two on one L2 segment, one behind a router),
# a stand-in API server, podwire's agent on each node routing to the others (direct and VXLAN),
# a pod on each node pinging across nodes; all removed when it ends (tests/cluster).
"$TARGET/quick/podwire-cluster-demo"
echo "done"
