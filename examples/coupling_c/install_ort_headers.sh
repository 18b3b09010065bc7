#!/usr/bin/env bash
# Install ONNX Runtime's official C API headers into PREFIX/include/onnxruntime (default
# PREFIX=/usr/local), for building closure_host.c against the libonnxruntime.so that the PyPI
# `onnxruntime` wheel ships (the wheel has the library but no headers).
#
# The headers come from Debian's libonnxruntime-dev package. Debian 13 (trixie) has it: there it
# is installed with apt-get. On Debian 12 (bookworm) only the .deb is downloaded from trixie, with
# a private apt state in a temporary folder (the system's sources are not touched), and only its
# usr/include/onnxruntime is copied. The C API is backward compatible: a host built with the
# 1.21 headers asks the library for API version 21, which every later library provides.
#
# Usage: bash examples/coupling_c/install_ort_headers.sh [PREFIX]     (needs root for /usr/local)
set -euo pipefail
prefix="${1:-/usr/local}"
dest="$prefix/include/onnxruntime"
for dir in "$dest" /usr/include/onnxruntime; do
    if [ -f "$dir/onnxruntime_c_api.h" ]; then
        echo "ONNX Runtime C headers already in $dir"
        exit 0
    fi
done
if apt-cache show libonnxruntime-dev >/dev/null 2>&1; then
    apt-get install -y -q libonnxruntime-dev
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
chmod -R a+rwX "$work"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -q)
apt-get "${apt_opts[@]}" update
(cd "$work/deb" && apt-get "${apt_opts[@]}" download libonnxruntime-dev)
dpkg-deb -x "$work"/deb/libonnxruntime-dev_*.deb "$work/root"
mkdir -p "$dest"
cp -r "$work/root/usr/include/onnxruntime/." "$dest/"
echo "ONNX Runtime C headers installed in $dest"
