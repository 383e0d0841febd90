#!/usr/bin/env bash
# Builds the process-server and master-target images with podman, the same way for an operator
# and for CI (docs/containers.md):
#   1. bundles the CLI with esbuild into a build context, beside the .wasm file lz4-wasm-nodejs
#      loads at run time, the health check and the image setup: the build downloads nothing;
#   2. with --local-base, makes the base image from this host's node binary and the libraries
#      ldd lists, for machines that cannot reach a registry;
#   3. builds process-server/Containerfile and master-target/Containerfile on that base.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
Usage: scripts/container-images.sh [--tag TAG] [--base IMAGE | --local-base [--node PATH]] [--root DIR] [--context DIR]

  --tag TAG      tag of the images (default: the version in package.json)
  --base IMAGE   base image with Node 20+ at /usr/local/bin/node (default: the Containerfiles'
                 docker.io/library/node:22-bookworm-slim)
  --local-base   make the base from this host's node binary instead (no registry needed);
                 it is tagged localhost/tidemark-node-base:TAG
  --node PATH    the node binary for --local-base (default: the node on PATH)
  --root DIR     keep images in a private podman store under DIR (storage/ and run/)
  --context DIR  keep the prepared build context in DIR (e.g. for `docker build`)

Builds localhost/tidemark-process-server:TAG and localhost/tidemark-master-target:TAG.
Set CONTAINERS_CONF to scripts/containers/containers.conf on hosts without systemd, where
crun fails or podman's default ulimits exceed the hard limits.
USAGE
}

tag=$(node -p 'require("./package.json").version')
base=''
local_base=0
node_bin=$(command -v node)
root=''
context=''
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --local-base) local_base=1; shift ;;
    --node) node_bin=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --context) context=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "container-images: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$base" ] && [ "$local_base" = 1 ]; then echo 'container-images: give --base or --local-base, not both' >&2; exit 2; fi

podman=(podman)
if [ -n "$root" ]; then podman+=(--root "$root/storage" --runroot "$root/run"); fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ -z "$context" ]; then context=$scratch/context; fi
mkdir -p "$context/app"

started=$EPOCHREALTIME
step() { printf 'container-images: %-46s %6.1f s\n' "$1" "$(awk -v now="$EPOCHREALTIME" -v then="$2" 'BEGIN { print now - then }')"; }

# 1. The CLI as one ES module. The CommonJS packages inside it (lz4-wasm-nodejs among them) expect
# require, __filename and __dirname, so the banner defines them from the bundle's own location;
# lz4-wasm-nodejs reads its .wasm from there.
t=$EPOCHREALTIME
banner="import { createRequire as tmCreateRequire } from 'node:module'; import { fileURLToPath as tmFileURLToPath } from 'node:url'; import { dirname as tmDirname } from 'node:path'; const require = tmCreateRequire(import.meta.url); const __filename = tmFileURLToPath(import.meta.url); const __dirname = tmDirname(__filename);"
printf '%s\n' "import { main } from './cli/main.ts';" 'process.exitCode = await main(process.argv.slice(2));' |
  node_modules/.bin/esbuild --bundle --platform=node --target=node20 --format=esm --sourcefile=tidemark.ts --loader=ts \
    --banner:js="$banner" --legal-comments=none --log-level=warning --outfile="$context/app/tidemark.mjs"
cp node_modules/lz4-wasm-nodejs/lz4_wasm_nodejs_bg.wasm "$context/app/"
cp scripts/containers/healthcheck.mjs scripts/containers/image-setup.mjs "$context/app/"
step 'bundle' "$t"

# 2. A base from the host's node: the binary at the official images' path plus what ldd lists.
if [ "$local_base" = 1 ]; then
  t=$EPOCHREALTIME
  tree=$scratch/base
  mkdir -p "$tree/usr/local/bin" "$tree/etc" "$tree/tmp"
  cp -L "$node_bin" "$tree/usr/local/bin/node"
  for lib in $(ldd "$node_bin" | grep -oE '/[^ ]+'); do
    mkdir -p "$tree$(dirname "$lib")"
    cp -L "$lib" "$tree$lib"
  done
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' >"$tree/etc/passwd"
  printf 'root:x:0:\n' >"$tree/etc/group"
  chmod 1777 "$tree/tmp"
  base=localhost/tidemark-node-base:$tag
  tar --owner=0 --group=0 -C "$tree" -c . |
    "${podman[@]}" import --quiet --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$base" >/dev/null
  step "base $base" "$t"
fi

# 3. The two images. Docker format, because the OCI image format has no HEALTHCHECK.
build_args=()
if [ -n "$base" ]; then build_args+=(--build-arg "BASE=$base"); fi
for role in process-server master-target; do
  t=$EPOCHREALTIME
  "${podman[@]}" build --quiet --format docker --network none "${build_args[@]}" \
    -f "$role/Containerfile" -t "localhost/tidemark-$role:$tag" "$context" >/dev/null
  step "image localhost/tidemark-$role:$tag" "$t"
done
step 'total' "$started"
"${podman[@]}" images --filter "reference=localhost/tidemark-*:$tag" --format '{{.Repository}}:{{.Tag}} {{.Size}}'
