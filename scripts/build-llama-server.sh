#!/usr/bin/env bash
# Builds llama.cpp's own server (llama-server) from the llama.cpp source node-llama-cpp ships
# (the same commit as the embedded engine), for `engine.backend: llama-server` and
# `npm run test:llama-server`. Nothing is downloaded: it needs git, cmake and a C++ compiler
# (Debian: apt-get install -y cmake g++). About 25 minutes on 2 cores; a built binary is reused.
#
#   bash scripts/build-llama-server.sh        # prints the binary's path
#   FLINT_LLAMA_SERVER_DIR=/opt/llama bash scripts/build-llama-server.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${FLINT_LLAMA_SERVER_DIR:-$root/.cache/llama-server}"
bin="$out/bin/llama-server"
bundle="$root/node_modules/node-llama-cpp/llama/gitRelease.bundle"
stamp="$(sha256sum "$bundle" | cut -c1-16)"
if [ -x "$bin" ] && [ "$(cat "$out/source" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi
for tool in git cmake c++; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: '$tool' is missing (Debian: apt-get install -y git cmake g++)" >&2; exit 1; }
done
rm -rf "$out/src" "$out/build"
mkdir -p "$out/bin"
git clone -q "$bundle" "$out/src"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# Static, CPU only, without the web UI, HTTPS or curl: one self-contained binary.
cmake -S "$out/src" -B "$out/build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$out/build" --target llama-server -j "$(nproc)" >&2
cp "$out/build/bin/llama-server" "$bin"
echo "$stamp" > "$out/source"
rm -rf "$out/src" "$out/build"
echo "$bin"
