#!/bin/sh
# The scale benchmark of issue #20 on the 16-core device machine (about 75 s of bench,
# well inside one 6-minute call). Prepare .whl/ first with bench/device/prepare_scale.sh,
# then run from the repository root, carrying .whl:
#
#   run(command="sh bench/device/run_scale.sh", carry=[".whl"], timeout_s=420)
#
# It installs the carried wheels into /tmp/site, puts the carried wrk on PATH, and writes
# the report and the JSON to $OUT (scale.txt, scale.json) when $OUT is set.
set -eu
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "${SITE:=/tmp/site}" .whl/*.whl
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1
export PATH="$PWD/.whl/bin:$PATH" LD_LIBRARY_PATH="$PWD/.whl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
OUT=${OUT:-/tmp}
python3 -c "import pyvips, onnxruntime, numpy; print('libvips', pyvips.version(0), pyvips.version(1))"
nproc
CLIENT=wrk
wrk --version >/dev/null 2>&1 || [ $? -eq 1 ] || CLIENT=httpx  # wrk --version exits 1
[ "$CLIENT" = httpx ] && echo "wrk does not run here: the httpx client instead (slower)"
python3 bench/serve_bench.py --cores "${CORES:-16}" --data .whl/data --client "$CLIENT" \
  ${QUICK:+--quick} --json "$OUT/scale.json" 2>&1 | tee "$OUT/scale.txt"
