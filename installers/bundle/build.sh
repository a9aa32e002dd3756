#!/usr/bin/env bash
# Build an offline install bundle of geodesk for Linux x86-64 (Python 3.11, Debian/Ubuntu).
#
#   installers/bundle/build.sh OUT_DIR [--torch cpu|cuda] [--no-debs] [--model PKG_DIR]... [--tiles FILE]...
#
# OUT_DIR receives:
#   wheels/     every wheel of the pinned stack (pyproject.toml, with the training extra) and the build
#               tools an editable install needs, so `pip install --no-index` works with no network;
#   app/        geodesk's source tree (geodesk/, training/, resources/ with the built basemap,
#               installers/, pyproject.toml, README);
#   debs/       the Debian packages of installers/debian/packages.txt and what they depend on, for
#               machines of the same Debian/Ubuntu release (left out with --no-debs);
#   models/     model packages given with --model (installed and hash-checked by `geodesk model install`);
#   tiles/      map tile files given with --tiles (installed by `geodesk map install`, when present);
#   install.sh  the installer; SHA256SUMS of every file, checked by install.sh before anything else.
# --torch cpu (default) takes the CPU build of torch; --torch cuda the CUDA build from PyPI (~3 GB more).
# Run it on a machine with network access to the package registries; copy OUT_DIR to the air-gapped
# machine (USB disk, data diode) and run `OUT_DIR/install.sh --prefix DIR` there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

[ $# -ge 1 ] || { echo "usage: build.sh OUT_DIR [--torch cpu|cuda] [--no-debs] [--model DIR]... [--tiles FILE]..." >&2; exit 2; }
out="$1"; shift
torch=cpu; debs=1; models=(); tiles=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) torch="$2"; shift 2 ;;
    --no-debs) debs=0; shift ;;
    --model) models+=("$2"); shift 2 ;;
    --tiles) tiles+=("$2"); shift 2 ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$torch" in cpu|cuda) ;; *) echo "build.sh: --torch takes cpu or cuda" >&2; exit 2 ;; esac
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "build.sh: $out exists and is not empty; give a new folder" >&2; exit 2
fi
mkdir -p "$out"/{wheels,app,models,tiles}
out="$(cd "$out" && pwd)"

echo "geodesk bundle: source tree" >&2
(cd "$repo" && git ls-files -z -- geodesk training resources installers pyproject.toml README.md CONTEXT.md docs \
   | xargs -0 -I{} cp --parents {} "$out/app/") 2>/dev/null || \
  (cd "$repo" && cp -r geodesk training resources installers pyproject.toml README.md "$out/app/")

# The default basemap is built at install time (ADR 0034) and not tracked: carry the built one, or
# build it here, where the Debian packages it is made from can be downloaded.
basemap="resources/basemap/naturalearth-10m.pmtiles"
if [ ! -f "$repo/$basemap" ]; then
  echo "geodesk bundle: building the default basemap" >&2
  make -C "$repo" basemap >&2
fi
mkdir -p "$out/app/resources/basemap"
cp "$repo"/resources/basemap/naturalearth-10m.* "$out/app/resources/basemap/"

echo "geodesk bundle: wheels (torch: $torch)" >&2
requirements="$out/wheels/requirements.txt"
"$python" - "$repo/pyproject.toml" "$torch" >"$requirements" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in project["dependencies"] + project["optional-dependencies"]["training"]:
    if sys.argv[2] == "cpu" and req.startswith("torch==") and "+" not in req:
        req += "+cpu"
    print(req)
PY
# `pip wheel` copies the registries' wheels and builds the few sdist-only packages into wheels, so the
# bundle installs with --no-index and no compiler. The CPU build of torch is `torch==X+cpu`: it must be
# reachable through pip's configured indexes or find-links (PyPI's own torch wheel is the CUDA build).
isolation=()
if [ "$torch" = cuda ]; then isolation+=(--isolated); fi  # PyPI's CUDA build, not a local CPU wheel
if ! "$python" -m pip wheel "${isolation[@]}" --wheel-dir "$out/wheels" -r "$requirements" \
     "setuptools>=69" wheel pip >&2; then
  echo "build.sh: pip could not fetch every wheel (for --torch cpu, the torch CPU wheel must be reachable" \
       "through pip's configuration); see the messages above" >&2
  exit 1
fi

if [ "$debs" -eq 1 ] && command -v apt-get >/dev/null 2>&1; then
  echo "geodesk bundle: Debian packages" >&2
  mkdir -p "$out/debs"
  mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$repo/installers/debian/packages.txt" | grep -v '^$')
  # The closure of their dependencies (no recommends), as this release names them.
  mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
      --no-breaks --no-replaces --no-enhances "${wanted[@]}" | grep -v '^ ' | grep -v '^<' | sort -u)
  (cd "$out/debs" && apt-get download "${closure[@]}" >/dev/null)
  cp /etc/os-release "$out/debs/os-release"
fi

for model in "${models[@]}"; do
  [ -f "$model/geodesk-model.json" ] || { echo "build.sh: $model is not a geodesk model package" >&2; exit 2; }
  cp -r "$model" "$out/models/"
done
for tile in "${tiles[@]}"; do cp "$tile" "$out/tiles/"; done

cp "$here/install.sh" "$out/install.sh"
chmod +x "$out/install.sh"
(cd "$out" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)
echo "geodesk bundle: $(du -sh "$out" | cut -f1) in $out" >&2
