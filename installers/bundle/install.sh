#!/usr/bin/env bash
# Install geodesk from an offline bundle made by installers/bundle/build.sh. Needs no network.
#
#   ./install.sh --prefix DIR [--no-system] [--workspace DIR] [--desktop user|system|none]
#
# 1. checks every file against SHA256SUMS (a damaged copy stops here, before anything is changed);
# 2. installs the missing Debian packages from debs/ (as root, or through sudo; --no-system skips it,
#    e.g. when an administrator installs them separately);
# 3. creates DIR/venv and installs the wheels from wheels/ with `pip --no-index`, then geodesk from
#    DIR/app (editable, so its resources stay beside the code);
# 4. installs the model packages in models/ and tile files in tiles/ into the workspace, with their
#    hashes checked by geodesk itself;
# 5. writes a desktop entry with geodesk's icon.
set -euo pipefail
bundle="$(cd "$(dirname "$0")" && pwd)"
prefix=""; system=1; workspace=""; desktop=user
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --no-system) system=0; shift ;;
    --workspace) workspace="$2"; shift 2 ;;
    --desktop) desktop="$2"; shift 2 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$prefix" ] || { echo "usage: install.sh --prefix DIR [--no-system] [--workspace DIR] [--desktop user|system|none]" >&2; exit 2; }
python="${PYTHON:-python3}"
say() { echo "geodesk install: $*" >&2; }

say "checking the bundle against SHA256SUMS"
(cd "$bundle" && sha256sum --quiet --strict -c SHA256SUMS) || {
  say "the bundle is damaged or incomplete (files above differ from SHA256SUMS); copy it again"; exit 1; }

if [ "$system" -eq 1 ] && [ -d "$bundle/debs" ] && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for deb in "$bundle"/debs/*.deb; do
    [ -e "$deb" ] || continue
    pkg="$(dpkg-deb -f "$deb" Package)"
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ] || missing+=("$deb")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || { say "run as root (or install sudo) to install ${#missing[@]} system packages"; exit 1; }
      sudo_cmd=(sudo)
    fi
    say "installing ${#missing[@]} system packages from the bundle"
    # apt resolves their order from the given files and what is installed, without any download.
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-download --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi

command -v "$python" >/dev/null 2>&1 || { say "python3 (3.11) is needed; install it from the debs or the OS"; exit 1; }
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
say "copying geodesk to $prefix/app"
rm -rf "$prefix/app.new"
cp -r "$bundle/app" "$prefix/app.new"
rm -rf "$prefix/app"
mv "$prefix/app.new" "$prefix/app"
[ -x "$prefix/venv/bin/python" ] || "$python" -m venv "$prefix/venv"
pip=("$prefix/venv/bin/python" -m pip --isolated --disable-pip-version-check)
say "installing the Python stack from wheels/ (no network)"
"${pip[@]}" install -q --no-index --find-links "$bundle/wheels" --upgrade pip setuptools wheel
"${pip[@]}" install -q --no-index --find-links "$bundle/wheels" -r "$bundle/wheels/requirements.txt"
"${pip[@]}" install -q --no-index --find-links "$bundle/wheels" --no-build-isolation --no-deps -e "$prefix/app"

geodesk=("$prefix/venv/bin/geodesk")
[ -n "$workspace" ] && geodesk+=(--workspace "$workspace")
for model in "$bundle"/models/*/; do
  [ -d "$model" ] || continue
  say "installing model package $(basename "$model") (hashes checked)"
  "${geodesk[@]}" model install "$model"
done
for tile in "$bundle"/tiles/*; do
  [ -f "$tile" ] || continue
  if "${geodesk[@]}" map --help >/dev/null 2>&1; then
    say "installing map tiles $(basename "$tile") (hashes checked)"
    "${geodesk[@]}" map install "$tile"
  else
    say "this geodesk has no 'map install'; $(basename "$tile") was not installed"
  fi
done

case "$desktop" in
  none) ;;
  user|system)
    if [ "$desktop" = system ]; then apps=/usr/share/applications; else apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"; fi
    mkdir -p "$apps"
    sed "s|@PREFIX@|$prefix|g" "$prefix/app/installers/bundle/geodesk.desktop.in" > "$apps/geodesk.desktop.tmp"
    mv "$apps/geodesk.desktop.tmp" "$apps/geodesk.desktop"
    say "desktop entry: $apps/geodesk.desktop" ;;
  *) say "--desktop takes user, system or none"; exit 2 ;;
esac
say "done: run $prefix/venv/bin/geodesk (or \`$prefix/venv/bin/geodesk doctor\` to check this machine)"
