#!/usr/bin/env bash
# The deploy/ files agree with profiled and with each other:
#   - promtool accepts the scrape config and the alert rules, and every
#     alert's runbook link lands on a heading of docs/operations.md;
#   - docker-compose (Debian's client; no engine needed) accepts the compose file;
#   - every profiled config shipped in deploy/ passes --check-config;
#   - the Kubernetes probes, port and volume match the config they mount,
#     and the grace period covers profiled's 30 s outbox drain;
#   - the Dockerfile copies files that exist, and its runtime stage installs
#     (directly or as dependencies) every shared library profiled links.
#   deploy_manifests_test.sh PROFILED_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

promtool check config "$src/deploy/prometheus/prometheus.yml" >/dev/null || fail "prometheus.yml"
promtool check rules "$src/deploy/prometheus/alerts.yml" >/dev/null || fail "alerts.yml"
# Every alert's runbook link lands on a heading of docs/operations.md.
/usr/bin/python3 - "$src/deploy/prometheus/alerts.yml" "$src/docs/operations.md" <<'PY' || fail "runbook links"
import re, sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]]
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip("# \n").lower()).replace(" ", "-")
           for h in open(sys.argv[2]) if h.startswith("#")}
bad = [r["alert"] for r in rules if r["annotations"]["runbook"].split("#")[1] not in anchors]
assert not bad, f"alerts whose runbook anchor is not a heading of operations.md: {bad}"
print(f"runbooks: {len(rules)} alerts, each links a heading of docs/operations.md")
PY
if command -v docker-compose >/dev/null; then
  docker-compose -f "$src/deploy/docker-compose.yml" config -q || fail "docker-compose.yml"
  echo "docker-compose.yml: valid (docker-compose $(docker-compose version --short))"
else
  echo "docker-compose not installed: compose file not validated"
fi
"$bin" --check-config --config "$src/deploy/docker/profiled.yaml" >/dev/null || fail "deploy/docker/profiled.yaml"
for f in "$src"/deploy/examples/*.yaml; do
  "$bin" --check-config --config "$f" >/dev/null || fail "$f"
done

for manifest in "$src"/deploy/kubernetes/*.yaml; do
/usr/bin/python3 - "$manifest" "$work/k8s-config.yaml" <<'PY' || fail "kubernetes manifest $manifest"
import sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1]))}
config_text = docs["ConfigMap"]["data"]["profiled.yaml"]
open(sys.argv[2], "w").write(config_text)
config = yaml.safe_load(config_text)
sts = docs["StatefulSet"]["spec"]
pod = sts["template"]["spec"]
c = pod["containers"][0]
port = int(config["http"]["listen"].rsplit(":", 1)[1])
assert config["http"]["listen"].startswith("0.0.0.0:"), "probes come from the kubelet: listen on all interfaces"
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
assert ports["http"] == port, f"containerPort {ports['http']} != http.listen port {port}"
assert docs["Service"]["spec"]["ports"][0]["port"] == port
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
if config.get("cluster", {}).get("mode") == "partitioned":
    assert sts["replicas"] > 1, "partitioned mode: many pods share the work"
    assert sts["podManagementPolicy"] == "Parallel", "OrderedReady would restore everything on pod 0 first"
    # Lookups are redirected to the owning pod: its address must be the pod's own.
    advertised = config["cluster"]["advertised_http"]
    assert advertised.startswith("${POD_IP}:"), "other pods redirect /v1 to the pod's own IP"
    assert advertised.split(":")[1] == config["http"]["listen"].rsplit(":", 1)[1], "advertised port = listen port"
    env_ip = {e["name"]: e for e in c.get("env", [])}.get("POD_IP")
    assert env_ip and env_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
else:
    assert sts["replicas"] == 1, "one instance per identity graph"
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
assert config["store"]["path"].startswith(mounts["data"] + "/"), "the store must live on the volume"
assert sts["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
assert "--config" in c["args"] and c["args"][c["args"].index("--config") + 1].startswith(mounts["config"] + "/")
assert pod["terminationGracePeriodSeconds"] > 30, "profiled drains the outbox for up to 30 s"
env = {e["name"]: e for e in c.get("env", [])}
assert config["input"]["group_instance_id"] == "${POD_NAME}", "static membership from the pod name"
assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
if "privacy" in config:
    secret_file = config["privacy"]["erasure"]["secret_file"]
    assert secret_file.startswith(mounts["secrets"] + "/"), "the erasure secret comes from the Secret volume"
    assert not secret_file.startswith(mounts["data"]), "the erasure secret must not live on the data volume"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "secret" in volumes["secrets"], "the secrets volume is a Secret"
    # --check-config below runs with a stand-in secret file.
    config["privacy"]["erasure"]["secret_file"] = sys.argv[2] + ".secret"
    open(sys.argv[2] + ".secret", "w").write("stand-in-secret-0123456789\n")
open(sys.argv[2], "w").write(yaml.safe_dump(config))
print(f"kubernetes {sys.argv[1].rsplit('/', 1)[1]}: probes, port, volumes, env and grace period agree with the config")
PY
POD_NAME=profiled-0 POD_IP=10.0.0.7 "$bin" --check-config --config "$work/k8s-config.yaml" >/dev/null \
  || fail "the ConfigMap's profiled.yaml in $manifest"
done
# Dockerfile: COPY sources exist (no engine here to build it).
dockerfile="$src/deploy/Dockerfile"
grep -E '^COPY [^-]' "$dockerfile" | while read -r _ from _; do
  [ -e "$src/$from" ] || [ "$from" = "." ] || fail "Dockerfile copies missing $from"
done
if apt-cache show librocksdb7.8 >/dev/null 2>&1; then
  runtime=$(sed -n '/^FROM debian:bookworm-slim/,$p' "$dockerfile" | tr ' \\' '\n\n' | grep -E '^lib|^ca-certificates' | sort -u)
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
              --no-replaces --no-enhances $runtime 2>/dev/null | grep -v '^ ' | tr -d '<>' | sort -u)
  # With merged /usr a library may be registered under /lib or /usr/lib.
  owner() { dpkg -S "$1" 2>/dev/null || dpkg -S "${1#/usr}" 2>/dev/null || fail "no package owns $1"; }
  needed=$(ldd "$bin" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
             owner "$(readlink -f "$lib")"; done | cut -d: -f1 | sort -u)
  for pkg in $needed; do
    grep -qx "$pkg" <<<"$closure" || fail "the Dockerfile's runtime stage does not install $pkg (ldd of profiled)"
  done
  echo "Dockerfile: runtime stage covers all $(wc -w <<<"$needed") library packages profiled links"
else
  echo "apt package lists absent: Dockerfile runtime libraries not checked"
fi
echo "PASS: deploy manifests"
