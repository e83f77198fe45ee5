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
  --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
export PATH="$PWD/.whl/bin:$PATH" LD_LIBRARY_PATH="$PWD/.whl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
OUT=${OUT:-/tmp}
python3 -c "import pyvips, onnxruntime, numpy; print('libvips', pyvips.version(0), pyvips.version(1))"
nproc
wrk --version | head -1 || true
python3 bench/serve_bench.py --cores "${CORES:-16}" --data .whl/data --client wrk \
  --json "$OUT/scale.json" 2>&1 | tee "$OUT/scale.txt"
