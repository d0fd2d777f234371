#!/usr/bin/env bash
# Installs every Debian package profiled needs to build, run and test.
# Idempotent; run as root on Debian bookworm. Skips apt entirely when every
# package is already installed.
#   setup-debian.sh               build + test tools (what the README commands need)
#   setup-debian.sh --build-only  just what building profiled needs (the Dockerfile)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  librdkafka-dev librocksdb-dev
  libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev libxxhash-dev libssl-dev
  prometheus-cpp-dev libsimdjson-dev
  libjemalloc-dev
  libcurl4-openssl-dev       # profilectl's HTTP client (TLS, proxies)
)
if [ "${1:-}" != "--build-only" ]; then
  PACKAGES+=(
    catch2 libbenchmark-dev
    prometheus                 # promtool and a real server for the metrics tests
    clang libclang-rt-14-dev   # libFuzzer targets (tests/fuzz)
    docker-compose             # validates deploy/docker-compose.yml (no engine needed)
    python3 python3-yaml       # test scripts read JSON/YAML (/usr/bin/python3)
    gdb                        # a hung test prints its threads' stacks (tests/support/catch_main.cc)
  )
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]} (run as root)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
