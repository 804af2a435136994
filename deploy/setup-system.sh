#!/usr/bin/env bash
# Install the system packages the local stack needs (Debian): Java 17 for the Kafka broker, Maven to
# fetch its jars from Maven Central, redis-server, the DejaVu fonts the PDF notice embeds; with --browser
# also Chromium and its WebDriver for the dashboard's browser test, and poppler-utils for the PDF's.
# Only what is missing; needs root (or sudo).
set -euo pipefail
need=()
if [ "${1:-}" = "--browser" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  # The PDF notice's test renders its pages (pdftoppm) and reads their text (pdftotext).
  command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
fi
# The PDF notice embeds DejaVu Sans (Vietnamese); chromium's fallback font too.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need+=(fonts-dejavu-core)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "missing packages: ${need[*]} (install them as root: apt-get install -y ${need[*]})" >&2; exit 1; }
  as_root=(sudo)
fi
echo "installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >&2
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
# Debian's redis-server package starts a system instance on 6379; the project runs its own.
if command -v systemctl >/dev/null 2>&1; then "${as_root[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
