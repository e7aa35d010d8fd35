#!/usr/bin/env bash
# Sets up llm's eye on a fresh machine: pnpm (pinned, through npm), the locked dependencies,
# the build, and a WebGPU adapter. Installs Mesa's lavapipe (software Vulkan) only when no
# adapter is found. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.8
export TURBO_TELEMETRY_DISABLED=1
say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none)). Install Node 20+ and run this again."

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION with npm (corepack is not used: its registry signature check fails offline)"
  npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
fi

say "installing dependencies from pnpm-lock.yaml"
pnpm install --frozen-lockfile --reporter=append-only >/dev/null

say "building packages"
pnpm run --silent build >/dev/null

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi; }

# Adds <codename>-backports next to the configured Debian mirror (whatever URI this machine uses).
add_backports() {
  local codename=$1 uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -vE 'security|nodesource|google' | head -n1 | sed -E 's/^URIs: *//; s/^deb +(\[[^]]*\] +)?//; s/ .*$//')
  [ -n "$uri" ] || die "could not find a Debian mirror in /etc/apt/sources.list*; add '$codename-backports' yourself and run this again"
  if ! grep -rqs -- "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "adding $codename-backports from $uri to /etc/apt/sources.list.d/llms-eye-backports.list"
    echo "deb $uri $codename-backports main" | as_root tee /etc/apt/sources.list.d/llms-eye-backports.list >/dev/null
  fi
}

install_lavapipe() {
  [ "$(uname -s)" = Linux ] || return 1
  [ -r /etc/os-release ] || return 1
  . /etc/os-release
  case "${ID:-}:${ID_LIKE:-}" in
    debian:*)
      say "no WebGPU adapter found: installing Mesa's lavapipe (software Vulkan) so the engine runs on the CPU."
      say "Debian ${VERSION_CODENAME:-?}'s own mesa-vulkan-drivers (22.x) lacks features Dawn needs, so it comes from ${VERSION_CODENAME}-backports (>= 25)."
      add_backports "$VERSION_CODENAME"
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "$VERSION_CODENAME-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
      ;;
    ubuntu:*|*:*debian*)
      say "no WebGPU adapter found: installing Mesa's Vulkan drivers (lavapipe, software Vulkan) from apt"
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
      ;;
    *) return 1 ;;
  esac
}

if node scripts/check-adapter.mjs; then
  exit 0
fi
if install_lavapipe && node scripts/check-adapter.mjs; then
  exit 0
fi
die "no usable WebGPU adapter. Fix: install a Vulkan driver that Dawn accepts — on Debian 12, \
'apt-get install -t bookworm-backports mesa-vulkan-drivers' (Mesa >= 25, lavapipe), or your GPU vendor's Vulkan driver — then run 'bash scripts/setup.sh' again."
