#!/usr/bin/env bash
# Bench-only dependencies for bench/realpath (the FastAPI + PyTorch comparison service).
# Never needed by `npm test` or the service. Debian packages, installed with apt-get when missing:
#   python3-torch python3-fastapi python3-uvicorn python3-pydicom python3-numpy
#   python3-pil   (pydicom 2.x's pixel handler for 8-bit JPEG Baseline: Debian's pydicom only
#                  *recommends* it, and without it pixel_array on a JPEG file raises)
#   python3-onnx  (reads the initializers of our model.onnx, so torch runs the same weights)
#   libopenblas0  (libtorch only *recommends* a BLAS; without it the reference netlib BLAS is used)
# Everything runs on Debian's own interpreter, /usr/bin/python3 (a pyenv or venv python on PATH
# does not see /usr/lib/python3/dist-packages).
#
#   bash scripts/bench-deps.sh          # install what is missing, then check the imports
#   bash scripts/bench-deps.sh --check  # only check; exit 1 if something is missing
set -euo pipefail

PY=/usr/bin/python3
PKGS=(python3-torch python3-fastapi python3-uvicorn python3-pydicom python3-numpy python3-pil python3-onnx libopenblas0)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "${1:-}" = "--check" ]; then
    echo "missing Debian packages: ${missing[*]} (run: bash scripts/bench-deps.sh)" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

"$PY" - <<'PYEOF'
import importlib, sys
vers = {}
for m in ("torch", "fastapi", "uvicorn", "pydicom", "numpy", "PIL", "onnx"):
    mod = importlib.import_module(m)
    vers[m] = getattr(mod, "__version__", "?")
from pydicom.pixel_data_handlers import pillow_handler
if not pillow_handler.is_available():
    sys.exit("pydicom's pillow handler is not available: JPEG Baseline DICOMs cannot be decoded")
print("bench deps ok:", " ".join(f"{k} {v}" for k, v in vers.items()), f"(python {sys.version.split()[0]} at {sys.executable})")
PYEOF
