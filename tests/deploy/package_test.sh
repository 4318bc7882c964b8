#!/usr/bin/env bash
# The Debian package (deploy/): `cpack -G DEB` makes enoki_VERSION_ARCH.deb from the build folder;
# unpacked into a scratch root (nothing is installed on this machine), its files are where they
# belong, the binary runs from there, a node started from there with the example configuration
# runs a Python process function that finds the module where the package put it, postinst makes
# the user enoki (run against stub commands), and `systemd-analyze verify` accepts the unit where
# the tool is present.
# usage: package_test.sh BUILD_DIR CPACK SOURCE_DIR
set -euo pipefail
build=$1 cpack=$2 source=$3

tmp=$(mktemp -d)
node_pid=
cleanup() {
  if [[ -n $node_pid ]]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
chmod 755 "$tmp"  # a node running as root runs its workers as nobody, who must reach the files
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The package, named enoki_VERSION_ARCH.deb.
cpack_var() { sed -n "s/^set($1 \"\\(.*\\)\")\$/\\1/p" "$build/CPackConfig.cmake"; }
version=$(cpack_var CPACK_PACKAGE_VERSION)
prefix=$(cpack_var CPACK_PACKAGING_INSTALL_PREFIX)  # /usr, unless the build folder says else
p=${prefix#/}
arch=$(dpkg --print-architecture)
start=$(date +%s%N)
"$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack"; }
deb=$tmp/out/enoki_${version}_${arch}.deb
[[ -f $deb ]] || fail "no $(basename "$deb") in: $(ls "$tmp/out")"
echo "cpack: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB, $((($(date +%s%N) - start) / 1000000)) ms"

# Its control fields.
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == enoki ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version)"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
echo "Depends: $depends"
for d in adduser libzmq5 libsqlite3-0 libyaml-cpp libprotobuf libssl3 libjemalloc2 libc6; do
  [[ $depends == *"$d"* ]] || fail "Depends lacks $d: $depends"
done
for d in gtest gmock benchmark; do
  [[ $depends != *"$d"* ]] || fail "Depends names $d: $depends"
done

# Its files, unpacked into a scratch root.
root=$tmp/root
dpkg-deb -x "$deb" "$root"
for f in bin/enoki share/enoki/python/enoki.py lib/systemd/system/enoki-node@.service \
  share/doc/enoki/README.md share/doc/enoki/packaging.md share/doc/enoki/security.md \
  share/doc/enoki/examples/node.toml; do
  f=$p/$f
  [[ -f $root/$f ]] || fail "the package has no /$f: $(dpkg-deb -c "$deb")"
done
enoki=$root/$p/bin/enoki
[[ -x $enoki ]] || fail "$prefix/bin/enoki is not executable"
cmp "$root/$p/share/enoki/python/enoki.py" "$source/python/enoki.py" || fail "enoki.py differs"
while read -r path; do
  path=${path#./} path=${path%/}
  [[ -z $path || $path == "$p" || $path == "$p"/* || $p == "$path"/* ]] ||
    fail "the package has /$path, outside $prefix"
done < <(dpkg-deb -c "$deb" | awk '{print $6}')
unit=$root/$p/lib/systemd/system/enoki-node@.service
grep -qx "ExecStart=$prefix/bin/enoki node --config /etc/enoki/%i.toml" "$unit" || fail "ExecStart"
for option in User=enoki StateDirectory=enoki/%i NoNewPrivileges=yes ProtectSystem=strict \
  ProtectHome=yes PrivateTmp=yes LimitNOFILE=65536 Restart=on-failure; do
  grep -qx "$option" "$unit" || fail "the unit lacks $option"
done

# The binary runs from the scratch root.
out=$("$enoki" --version) || fail "--version"
[[ $out == "enoki $version"* ]] || fail "--version: $out"
"$enoki" --help >/dev/null || fail "--help"
out=$("$enoki" node --help) || fail "node --help"
[[ $out == *--config* ]] || fail "node --help: $out"

# A node from the scratch root, with the example configuration (its endpoint and data folder
# moved here), runs a Python process function: the worker imports enoki from
# <root>$prefix/share/enoki/python, the only place it can find it.
mkdir -p "$tmp/fns" "$tmp/data"
cp "$source/tests/integration/functions/counter.py" "$tmp/fns/"
chmod -R a+rX "$tmp/fns"
export ENOKI_NODE=ipc://$tmp/node.sock
(cd "$tmp" && exec "$enoki" node --config "$root/$p/share/doc/enoki/examples/node.toml" \
  --listen "$ENOKI_NODE" --data-dir "$tmp/data" --process-dir "$tmp/fns" \
  --ready-file "$tmp/ready" >"$tmp/node.log" 2>&1) &
node_pid=$!
for _ in $(seq 100); do
  [[ -s $tmp/ready ]] && break
  kill -0 "$node_pid" 2>/dev/null || { cat "$tmp/node.log"; fail "the node stopped"; }
  sleep 0.1
done
[[ -s $tmp/ready ]] || { cat "$tmp/node.log"; fail "the node is not ready after 10 s"; }
"$enoki" keygroup create shop --replicas edge1 >/dev/null
"$enoki" deploy hits --runtime process --handler "$tmp/fns/counter.py" --keygroup shop >/dev/null
out=$("$enoki" invoke hits 2>&1) || { cat "$tmp/node.log"; fail "invoke: $out"; }
[[ $out == 1 ]] || { cat "$tmp/node.log"; fail "invoke printed '$out', not 1"; }
out=$("$enoki" invoke hits 2>&1)
[[ $out == 2 ]] || fail "the second invoke printed '$out', not 2"
kill "$node_pid"
wait "$node_pid" || fail "the node did not stop cleanly on SIGTERM"
node_pid=

# postinst makes the system user enoki and the folders, here against stub commands that log
# their arguments (nothing is changed on this machine).
mkdir -p "$tmp/control" "$tmp/stubs"
dpkg-deb -e "$deb" "$tmp/control"
for s in postinst prerm postrm; do
  [[ -x $tmp/control/$s ]] || fail "no executable $s"
done
for c in adduser mkdir chown chmod systemctl; do
  printf '#!/bin/sh\necho %s "$@" >>"%s/calls"\n' "$c" "$tmp" >"$tmp/stubs/$c"
done
printf '#!/bin/sh\nexit 2\n' >"$tmp/stubs/getent"           # no user enoki yet
printf '#!/bin/sh\nexit 1\n' >"$tmp/stubs/dpkg-statoverride" # no overrides
chmod +x "$tmp/stubs/"*
PATH=$tmp/stubs:$PATH "$tmp/control/postinst" configure || fail "postinst"
for call in "adduser --system --group --home /var/lib/enoki --no-create-home --gecos Enoki node enoki" \
  "mkdir -p /etc/enoki /var/lib/enoki" "chown root:enoki /etc/enoki" "chmod 0750 /etc/enoki" \
  "chown enoki:enoki /var/lib/enoki"; do
  grep -qxF "$call" "$tmp/calls" || fail "postinst did not run '$call': $(cat "$tmp/calls")"
done

# systemd accepts the unit (an instance of the template) on this machine, its ExecStart pointed at
# the scratch root's binary (verify checks that it is there).
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$tmp/units"
  sed "s|^ExecStart=$prefix/bin/enoki |ExecStart=$enoki |" "$unit" >"$tmp/units/enoki-node@edge1.service"
  out=$(systemd-analyze verify "$tmp/units/enoki-node@edge1.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
  [[ -z $out ]] || fail "systemd-analyze verify warns: $out"
  echo "systemd-analyze verify: accepted"
else
  echo "systemd-analyze verify: skipped (no systemd-analyze here)"
fi
echo "PASS"
