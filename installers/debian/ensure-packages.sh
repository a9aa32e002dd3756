#!/usr/bin/env bash
# Install the Debian packages geodesk needs (installers/debian/packages.txt) when some are missing.
# As root it runs apt-get; otherwise through sudo when sudo works without a password prompt; otherwise
# it stops before anything else is installed and prints the one command to run.
# Usage: ensure-packages.sh [--check] [--update]
#   --check   only report what is missing (exit 1 when something is)
#   --update  run `apt-get update` before installing (fresh machines and CI)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
list="$here/packages.txt"
check_only=0; update=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --update) update=1 ;;
    *) echo "ensure-packages.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "geodesk: not a Debian/Ubuntu system; install the equivalents of $list with your package manager" >&2
  exit 0
fi

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')
missing=()
for pkg in "${wanted[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = "installed" ] || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

command_line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
  echo "geodesk: missing system packages: ${missing[*]}" >&2
  echo "geodesk: install them with: sudo $command_line" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo_cmd=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo_cmd=(sudo)
else
  echo "geodesk: these system packages are missing: ${missing[*]}" >&2
  echo "geodesk: run this once, then run make again:" >&2
  echo "    sudo apt-get update && sudo $command_line" >&2
  exit 1
fi
echo "geodesk: installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if [ "$update" -eq 1 ]; then "${sudo_cmd[@]}" apt-get update -qq; fi
if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  # A stale package index is the usual cause on a machine that has not run apt-get update lately.
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
