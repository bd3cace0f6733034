#!/usr/bin/env bash
# Lets burn's CUDA backend build offline. burn 0.22 → cubecl-cuda 0.11 → cubecl-llvm, whose build
# dependency tracel-llvm-bundler 23.1.0-4 downloads an LLVM 23 bundle from GitHub. We stand Debian's
# LLVM 22 in for it: the bundler skips its download when its install marker exists, and then only
# runs `<bundle>/bin/llvm-config`. Everything goes under "$1" (used as XDG_DATA_HOME for the build),
# so nothing outside the build cache changes. Idempotent.
set -euo pipefail
data_home=${1:?usage: cuda-llvm.sh XDG_DATA_HOME}
bundle="$data_home/tracel/tracel-llvm-23.1.0-4"
sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)

if ! dpkg -s llvm-22-dev libzstd-dev >/dev/null 2>&1; then
  echo "installing Debian's llvm-22-dev and libzstd-dev (stand-in for tracel's LLVM 23 bundle)"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q llvm-22-dev libzstd-dev
fi

mkdir -p "$bundle/bin"
cat > "$bundle/bin/llvm-config.new" <<'EOS'
#!/bin/sh
# Stand-in for tracel's LLVM 23 bundle: Debian's LLVM 22, with two fixes to its output.
# - The bundler turns each --system-libs token into a bare library name, so a full path such as
#   /usr/lib/x86_64-linux-gnu/libz3.so must become -lz3.
# - Debian's --libs lists Polly and PollyISL, which llvm-22-dev ships no static archives for.
out=$(/usr/lib/llvm-22/bin/llvm-config "$@") || exit $?
printf '%s\n' "$out" | sed -E 's#(^| )/[^ ]*/lib([A-Za-z0-9_+-]+)\.so#\1-l\2#g; s#(^| )-lPolly(ISL)?( |$)#\1#g; s#(^| )-lPolly(ISL)?( |$)#\1#g'
EOS
chmod +x "$bundle/bin/llvm-config.new"
if cmp -s "$bundle/bin/llvm-config.new" "$bundle/bin/llvm-config"; then
  rm "$bundle/bin/llvm-config.new"
else
  mv "$bundle/bin/llvm-config.new" "$bundle/bin/llvm-config"
fi
touch "$bundle/.tracel-llvm-installed"
