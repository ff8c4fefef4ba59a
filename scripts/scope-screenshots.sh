#!/usr/bin/env bash
# Takes the README's screenshots of the scope (docs/scope-*.png) with headless Chromium,
# driven through chromedriver's WebDriver API.
#   scripts/scope-screenshots.sh       needs chromium, chromium-driver and curl
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -q
flux=target/release/flux
port=7791
driver_port=9516
profile=$(mktemp -d)
chromedriver --port=$driver_port >/dev/null 2>&1 &
driver=$!
trap 'kill $driver 2>/dev/null || true; rm -rf "$profile"' EXIT
until curl -sf "localhost:$driver_port/status" >/dev/null; do sleep 0.1; done

webdriver() { # METHOD PATH [JSON]
  curl -sf -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "localhost:$driver_port$2"
}

args='"--headless","--no-sandbox","--disable-gpu","--disable-quic","--no-first-run",
  "--disable-background-networking","--disable-component-update","--disable-sync",
  "--window-size=1000,780","--user-data-dir='"$profile"'"'
session=$(webdriver POST /session \
  "{\"capabilities\":{\"alwaysMatch\":{\"goog:chromeOptions\":{\"args\":[$args]}}}}" |
  grep -o '"sessionId":"[^"]*"' | cut -d'"' -f4)

shot() { # EXAMPLE VIEW OUT [flux options...]
  local example=$1 view=$2 out=$3
  shift 3
  "$flux" scope "examples/$example" --null --seconds 10 --scope=127.0.0.1:$port "$@" 2>/dev/null &
  local player=$!
  sleep 1
  webdriver POST "/session/$session/url" "{\"url\":\"http://127.0.0.1:$port/#$view\"}" >/dev/null
  sleep 4
  webdriver GET "/session/$session/screenshot" | grep -o '"value":"[^"]*"' | cut -d'"' -f4 |
    base64 -d >"docs/$out"
  kill "$player" 2>/dev/null || true
  wait "$player" 2>/dev/null || true
  echo "docs/$out"
}

shot lissajous.js 'mode=yt&tdiv=1&gain=1&persist=0' scope-yt.png --channels 2
shot lissajous.js 'mode=xy&gain=1.5&persist=300' scope-xy.png
shot torus-knot.js 'mode=xyz&gain=1.5&persist=400' scope-xyz.png
shot torus-knot.js 'mode=spectrum&gain=1&persist=300' scope-spectrum.png
webdriver DELETE "/session/$session" >/dev/null
