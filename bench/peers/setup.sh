#!/usr/bin/env bash
# Install the peers of bench/peers/run.py into bench/peers/.scratch/ (git-ignored), never into
# the repository's own environment. Idempotent: what is already there is kept.
#
#   bash bench/peers/setup.sh            # or: python3 bench/peers/run.py --setup
#
# - thumbor (PyPI) in its own venv: .scratch/thumbor-venv, with the "opencv" extra
#   (opencv-python-headless + numpy), which thumbor's smart mode (face + feature detectors)
#   needs. Pure wheels: no system library is needed beyond what Python itself has.
# - ipx (npm) in .scratch/ipx: its CLI (`ipx serve`, on listhen, an ipx dependency) and sharp,
#   whose prebuilt libvips comes as the npm package @img/sharp-libvips-linux-x64.
# - wrk from Debian when it is missing (as root: apt-get; otherwise it says what to run).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRATCH="${PEERS_SCRATCH:-$HERE/.scratch}"
THUMBOR_VERSION="${THUMBOR_VERSION:-7.8.0}"
IPX_VERSION="${IPX_VERSION:-3.1.1}"
PYTHON="${PEERS_PYTHON:-python3}"

mkdir -p "$SCRATCH"

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing wrk (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  else
    echo "setup: wrk is missing: run 'apt-get install -y wrk' as root" >&2
    exit 2
  fi
fi

if [ ! -x "$SCRATCH/thumbor-venv/bin/thumbor" ] \
  || ! "$SCRATCH/thumbor-venv/bin/python" -c "import cv2, numpy" >/dev/null 2>&1; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || { echo "setup: thumbor $THUMBOR_VERSION needs Python >= 3.9 ($PYTHON)" >&2; exit 2; }
  echo "setup: thumbor $THUMBOR_VERSION -> $SCRATCH/thumbor-venv"
  "$PYTHON" -m venv "$SCRATCH/thumbor-venv"
  "$SCRATCH/thumbor-venv/bin/pip" install --quiet --disable-pip-version-check \
    "thumbor[opencv]==$THUMBOR_VERSION"
fi

if [ ! -f "$SCRATCH/ipx/node_modules/ipx/bin/ipx.mjs" ] \
  || ! (cd "$SCRATCH/ipx" && node -e "require('sharp')") >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { echo "setup: npm (Node.js >= 18) is missing" >&2; exit 2; }
  echo "setup: ipx $IPX_VERSION -> $SCRATCH/ipx"
  mkdir -p "$SCRATCH/ipx"
  # an explicit version, so npm never takes "ipx" for the folder of the same name
  npm install --prefix "$SCRATCH/ipx" --save-exact --no-audit --no-fund --loglevel=error \
    "ipx@$IPX_VERSION"
fi

echo "setup: thumbor $("$SCRATCH/thumbor-venv/bin/thumbor" --version 2>&1 | tail -1)," \
  "opencv $("$SCRATCH/thumbor-venv/bin/python" -c 'import cv2; print(cv2.__version__)')," \
  "ipx $(node -p "require('$SCRATCH/ipx/node_modules/ipx/package.json').version")," \
  "sharp $(cd "$SCRATCH/ipx" && node -p "require('sharp/package.json').version")," \
  "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
