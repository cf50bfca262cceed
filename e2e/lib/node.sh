# A real node on this host: containerd (Debian) with runc and the Debian CNI plugins, the kubelet
# and kube-scheduler built from k8s.io/kubernetes (cluster.sh builds them with the control plane).
# Nothing is pulled: the pause image is compiled from the kubernetes module's build/pause/linux/
# pause.c, every other image is built by image/oci.py and imported with `ctr images import`;
# containerd's registry mirrors point at 127.0.0.1:1 so that a pull fails at once.
#
#   node_tools                  apt-get install containerd runc containernetworking-plugins
#   build_node_images DIR       pause and stand-in-engine OCI archives in DIR
#   start_node DIR              containerd, image imports, kubelet, kube-scheduler; waits for Ready
#   stop_node                   pods' containers killed, processes stopped, mounts, the bridge,
#                               network namespaces, cgroups and IP allocations removed
#   node_import ARCHIVE         imports one more OCI archive into the node's containerd
#
# Networking: a bridge ($NODE_BRIDGE, 10.244.$NODE_NET.0/24, gateway on the host side, no
# masquerade, no iptables rules) from the CNI bridge plugin; one network namespace per pod, made
# by containerd under /var/run/netns and deleted with the pod. The host reaches pod IPs directly,
# so the API server calls the webhook's Service through its endpoints
# (--enable-aggregator-routing, set in cluster.sh) and Prometheus scrapes pod IPs: no kube-proxy.
# cgroups (v1 on this machine kind: failCgroupV1: false) live under $NODE_CGROUP_ROOT in every
# hierarchy and are removed at the end; the host's own cgroups are not touched.

NODE_NAME=e2e-node
NODE_BRIDGE="${NODE_BRIDGE:-iwe2e0}"
NODE_NET="${NODE_NET:-237}"
NODE_CGROUP_ROOT="${NODE_CGROUP_ROOT:-/inference-webhook-e2e}"
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
ENGINE_IMAGE=docker.io/library/stand-in-engine:e2e
NODE_PIDS=()

node_tools() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v jq >/dev/null || missing+=(jq)
  command -v gcc >/dev/null || missing+=(gcc libc6-dev)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The node can run only as root with cgroups and a writable /var/run/netns; says why not otherwise.
node_possible() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
  [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "no cgroup hierarchy"; return 1; }
  return 0
}

build_node_images() {
  local out="$1" k8s tmp
  mkdir -p "$out"
  go_env
  k8s="$(cd "$E2E_ROOT" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
  tmp="$(mktemp -d)"
  # The pause binary as upstream builds it (build/pause/Makefile: static, VERSION defined).
  gcc -Os -Wall -Werror -static -DVERSION="v3.10.2-e2e" -o "$tmp/pause" "$k8s/build/pause/linux/pause.c"
  strip "$tmp/pause"
  python3 "$E2E_ROOT/../image/oci.py" simple --name "$PAUSE_IMAGE" --out "$out/pause.oci.tar" \
    --file "$tmp/pause:/pause" --entrypoint /pause --user 65535:65535
  (cd "$E2E_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$tmp/stand-in-engine" ./cmd/stand-in-engine)
  python3 "$E2E_ROOT/../image/oci.py" simple --name "$ENGINE_IMAGE" --out "$out/stand-in-engine.oci.tar" \
    --file "$tmp/stand-in-engine:/usr/local/bin/vllm" --file "$tmp/stand-in-engine:/usr/local/bin/python3" \
    --user 65534:65534
  rm -rf "$tmp"
}

node_ctr() { ctr --address "$NODE_DIR/containerd/containerd.sock" -n k8s.io "$@"; }
node_import() { node_ctr images import --no-unpack=false "$1" >/dev/null && echo "imported $(basename "$1")"; }

containerd_config() {
  cat <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$NODE_DIR/containerd/containerd.sock"
[ttrpc]
  address = "$NODE_DIR/containerd/containerd.sock.ttrpc"
[debug]
  address = "$NODE_DIR/containerd/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # This machine kind's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below
  # containerd's (the kubelet asks -998 for every pod sandbox), and fails with "nsexec: failed to
  # update /proc/self/oom_score_adj: Permission denied". This clamps the value instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${NODE_RUNC:-$(command -v runc)}"
        SystemdCgroup = false
        Root = "$NODE_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://127.0.0.1:1"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]
    endpoint = ["http://127.0.0.1:1"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."quay.io"]
    endpoint = ["http://127.0.0.1:1"]
EOF
}

cni_config() {
  cat <<EOF
{
  "cniVersion": "0.4.0",
  "name": "inference-webhook-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
              "ranges": [[{"subnet": "10.244.$NODE_NET.0/24", "gateway": "10.244.$NODE_NET.1"}]]}}
  ]
}
EOF
}

kubelet_config() { # kubelet_config PORT HEALTHZ_PORT
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $NODE_CGROUP_ROOT
cgroupsPerQOS: true
containerRuntimeEndpoint: unix://$NODE_DIR/containerd/containerd.sock
address: 127.0.0.1
port: $1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $2
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
registerNode: true
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%"}
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
shutdownGracePeriod: 0s
EOF
}

node_bg() { # node_bg NAME COMMAND...: like start_bg, and remembered for stop_node
  local name="$1"; shift
  "$@" >"$E2E_LOGS/$name.log" 2>&1 &
  NODE_PIDS+=("$!")
}

start_node() {
  NODE_DIR="$1"
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam" "$NODE_DIR/kubelet"
  containerd_config >"$NODE_DIR/containerd/config.toml"
  cni_config >"$NODE_DIR/cni/net.d/10-e2e.conflist"
  node_bg containerd containerd --config "$NODE_DIR/containerd/config.toml"
  wait_for 60 node_ctr version || { tail -20 "$E2E_LOGS/containerd.log"; return 1; }
  local archive
  for archive in "$NODE_IMAGES"/*.oci.tar; do node_import "$archive"; done

  # The kubelet's cgroupRoot must exist in every hierarchy (cpuset: with the parent's CPUs and
  # memory nodes, or no task could join it).
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "${h}cgroup.procs" ] || continue
    mkdir -p "$h${NODE_CGROUP_ROOT#/}"
    if [ -f "${h}cpuset.cpus" ]; then
      cat "${h}cpuset.cpus" >"$h${NODE_CGROUP_ROOT#/}/cpuset.cpus"
      cat "${h}cpuset.mems" >"$h${NODE_CGROUP_ROOT#/}/cpuset.mems"
    fi
  done
  local port healthz
  port="$(free_port)"; healthz="$(free_port)"
  kubelet_config "$port" "$healthz" >"$NODE_DIR/kubelet/config.yaml"
  node_bg kubelet "$E2E_BIN/kubelet" --config "$NODE_DIR/kubelet/config.yaml" --kubeconfig "$KUBECONFIG" \
    --root-dir "$NODE_DIR/kubelet/root" --cert-dir "$NODE_DIR/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip 127.0.0.1 --v 2
  node_bg kube-scheduler "$E2E_BIN/kube-scheduler" --kubeconfig "$KUBECONFIG" \
    --authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$(free_port)"
  if ! wait_for 180 node_ready; then
    echo "the node did not become Ready; kubelet log:" >&2
    grep -E '^E|error|Error' "$E2E_LOGS/kubelet.log" | tail -30 >&2
    return 1
  fi
}

node_ready() {
  [ "$("$KUBECTL" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

stop_node() {
  [ -n "${NODE_DIR:-}" ] || return 0
  local i pid
  # The kubelet and the scheduler first, then every pod sandbox and container through containerd.
  for ((i = ${#NODE_PIDS[@]} - 1; i >= 1; i--)); do
    kill "${NODE_PIDS[i]}" 2>/dev/null || true
    wait "${NODE_PIDS[i]}" 2>/dev/null || true
  done
  if [ -S "$NODE_DIR/containerd/containerd.sock" ]; then
    local id
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    sleep 1
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(node_ctr containers ls -q 2>/dev/null); do node_ctr containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  if [ "${#NODE_PIDS[@]}" -gt 0 ]; then
    kill "${NODE_PIDS[0]}" 2>/dev/null || true
    wait "${NODE_PIDS[0]}" 2>/dev/null || true
  fi
  NODE_PIDS=()
  # Shims of this containerd (their command line names its socket) that outlived it.
  for pid in $(pgrep -f -- "-address $NODE_DIR/containerd/containerd.sock" || true); do kill -9 "$pid" 2>/dev/null || true; done
  # Network namespaces whose pod IP is in this node's range (containerd names them cni-UUID).
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do
    if ip netns exec "$ns" ip -4 addr 2>/dev/null | grep -q "inet 10.244.$NODE_NET\."; then ip netns delete "$ns" 2>/dev/null || true; fi
  done
  ip link delete "$NODE_BRIDGE" 2>/dev/null || true
  # Mounts under the node's directory (tmpfs volumes, overlay roots, shm), deepest first.
  local m
  for m in $(awk -v d="$NODE_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  # This node's cgroups in every v1 hierarchy (and the unified one), deepest first.
  local root
  for root in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$root${NODE_CGROUP_ROOT#/}" ] || continue
    find "$root${NODE_CGROUP_ROOT#/}" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  NODE_DIR=
}
