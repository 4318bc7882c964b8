#!/usr/bin/env bash
# Installs Enoki's build dependencies from Debian's packages: what builds the binary, the package,
# the tests and the benchmarks (GoogleTest, Google Benchmark: scripts/build.sh builds them all),
# and what `enoki` runs beside it (python3 for process functions and plots, iproute2 for netem
# links). `--tests` also installs the tools the tests run (Redis, curl, wrk, nftables for the NAT
# test, ansible-core and OpenSSH for the Ansible deployment test, clang with its sanitizer and
# libFuzzer runtimes for the sanitizer build).
# Idempotent: packages already present are skipped by apt. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build clang-format file
  libzmq3-dev cppzmq-dev
  libsqlite3-dev sqlite3 libzip-dev
  libcli11-dev libyaml-cpp-dev
  libprotobuf-dev protobuf-compiler
  libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libssl-dev libjemalloc-dev
  python3 python3-matplotlib iproute2
  libgtest-dev libgmock-dev libbenchmark-dev
)
test_packages=(
  redis-server redis-tools curl wrk nftables
  ansible-core openssh-server openssh-client
  clang libclang-rt-dev
)

for arg in "$@"; do
  case "$arg" in
    --tests) packages+=("${test_packages[@]}") ;;
    *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The tests run sshd of their own inside namespaces they make: the package's service, which
  # Debian starts on every address, is not wanted on a machine that had none.
  if [[ " ${missing[*]} " == *" openssh-server "* && -d /run/systemd/system ]]; then
    echo "setup: disabling the ssh service openssh-server started (the tests run their own sshd)"
    "${sudo_cmd[@]}" systemctl disable --now ssh.service
  fi
fi
