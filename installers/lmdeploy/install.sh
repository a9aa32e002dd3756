#!/usr/bin/env bash
# Creates lmdeploy's own Python environment for geodesk's fast local engine.
#
#   installers/lmdeploy/install.sh [--env DIR] [--python PYTHON] [--find-links WHEELHOUSE] [--force]
#                                  [--check-only]
#
# lmdeploy 0.18 needs an NVIDIA GPU with CUDA and pins torch<=2.12.1 and peft<=0.14.0, so it cannot
# share geodesk's environment (torch 2.13, peft 0.21). geodesk starts it as a separate process:
# `geodesk lmdeploy start`. Default environment: ~/.local/share/geodesk/lmdeploy-env (the same default
# geodesk uses; override with --env or GEODESK_LMDEPLOY_ENV). --find-links installs from a local folder
# of wheels (offline machines); otherwise pip uses the configured package index.
# Exit codes: 0 ready, 1 install failed (the half-made environment is removed), 2 no NVIDIA GPU,
# 3 bad usage / no suitable Python.
set -euo pipefail

LMDEPLOY_VERSION="0.18.0"
ENV_DIR="${GEODESK_LMDEPLOY_ENV:-$HOME/.local/share/geodesk/lmdeploy-env}"
PYTHON="${PYTHON:-python3}"
FIND_LINKS=""
FORCE=0
CHECK_ONLY=0

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --env) ENV_DIR="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --find-links) FIND_LINKS="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    --check-only) CHECK_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 3 ;;
  esac
done

# 1. An NVIDIA GPU with its driver: nvidia-smi, or the kernel driver's /proc entry.
gpu=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu="$(nvidia-smi -L | head -n 1)"
elif [ -r /proc/driver/nvidia/version ]; then
  gpu="$(head -n 1 /proc/driver/nvidia/version)"
fi
if [ -z "$gpu" ]; then
  cat >&2 <<MSG
install.sh: NO NVIDIA GPU on this machine (no working nvidia-smi, no /proc/driver/nvidia).
lmdeploy ${LMDEPLOY_VERSION} needs CUDA and cannot run here. geodesk itself works without it:
use the hf backend (geodesk serve / geodesk locate), or connect to a GPU workstation with
--backend remote --endpoint http://HOST:PORT. Nothing was installed.
MSG
  exit 2
fi
echo "install.sh: NVIDIA GPU: $gpu"

# 2. A Python lmdeploy has wheels for (3.9 - 3.12).
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "install.sh: $PYTHON not found; pass --python /path/to/python3.11" >&2; exit 3
fi
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$pyver" in
  3.9|3.10|3.11|3.12) ;;
  *) echo "install.sh: $PYTHON is Python $pyver; lmdeploy $LMDEPLOY_VERSION needs 3.9-3.12 (--python)" >&2; exit 3 ;;
esac
echo "install.sh: Python $pyver ($PYTHON); environment: $ENV_DIR"
if [ "$CHECK_ONLY" = 1 ]; then
  echo "install.sh: checks passed (--check-only: nothing installed)"; exit 0
fi

if [ -e "$ENV_DIR" ]; then
  if [ "$FORCE" = 1 ]; then
    rm -rf "$ENV_DIR"
  elif [ -x "$ENV_DIR/bin/lmdeploy" ]; then
    echo "install.sh: $ENV_DIR already has lmdeploy; --force reinstalls"; exit 0
  else
    echo "install.sh: $ENV_DIR exists but holds no lmdeploy; remove it or pass --force" >&2; exit 3
  fi
fi

# 3. The environment. A venv cannot be moved after creation (absolute paths in its scripts), so it is
# built in place and removed again if anything fails.
cleanup() { status=$?; if [ $status -ne 0 ]; then echo "install.sh: failed; removing $ENV_DIR" >&2; rm -rf "$ENV_DIR"; fi; }
trap cleanup EXIT
mkdir -p "$(dirname "$ENV_DIR")"
"$PYTHON" -m venv "$ENV_DIR"
pip_args=(--disable-pip-version-check --no-input)
if [ -n "$FIND_LINKS" ]; then pip_args+=(--no-index --find-links "$FIND_LINKS"); fi
"$ENV_DIR/bin/python" -m pip install "${pip_args[@]}" --upgrade pip
# lmdeploy brings its own pins (torch<=2.12.1 with CUDA, transformers, ...); peft is pinned explicitly
# because LoRA adapters are served through it and 0.14 is the newest lmdeploy accepts.
"$ENV_DIR/bin/python" -m pip install "${pip_args[@]}" "lmdeploy==${LMDEPLOY_VERSION}" "peft<=0.14.0"

# 4. Proof that it works: import, CUDA visible to its torch.
"$ENV_DIR/bin/python" - <<'PY'
import torch, lmdeploy
assert torch.cuda.is_available(), "torch in the lmdeploy environment does not see CUDA (driver too old?)"
print(f"install.sh: lmdeploy {lmdeploy.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
PY
"$ENV_DIR/bin/lmdeploy" --help >/dev/null
echo "install.sh: ready. Start a server with: geodesk lmdeploy start [--model NAME]"
