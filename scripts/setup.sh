#!/usr/bin/env bash
# Installs the system packages Flux builds and tests with (Debian/Ubuntu), then builds it.
#   scripts/setup.sh [--deps-only]
#   ALSA headers and pkg-config for cpal; JACK headers for cpal's JACK host;
#   jackd2 for the headless device test (a JACK server with the dummy driver);
#   chromium and chromium-driver for the scope's browser test (headless);
#   neovim for the editor plugin's test (nvim --headless).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libasound2-dev libjack-jackd2-dev jackd2 chromium chromium-driver neovim)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
[ "${1:-}" = "--deps-only" ] || cargo build --release --locked
