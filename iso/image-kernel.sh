#!/usr/bin/env bash
# image-kernel.sh KERNEL OUT: the kernel file an image carries: KERNEL
# without its DWARF debug information (objcopy --strip-debug), which GDB
# reads from build/baton on the host and the kernel never reads. Its
# symbol table stays: the kernel names functions in its reports from it.
# The debug information is most of the file (some 9 of 11 MB), and Limine
# reads the whole file into memory before it starts the kernel: without it
# a boot needs that much less RAM.
set -euo pipefail
kernel=$1 out=$2
for tool in objcopy llvm-objcopy rust-objcopy; do
    if command -v "$tool" >/dev/null; then
        exec "$tool" --strip-debug "$kernel" "$out"
    fi
done
sysroot=$(rustc --print sysroot 2>/dev/null || true)
for objcopy in "$sysroot"/lib/rustlib/*/bin/rust-objcopy; do
    if [ -x "$objcopy" ]; then
        exec "$objcopy" --strip-debug "$kernel" "$out"
    fi
done
echo "image-kernel: no objcopy (binutils, llvm or rustup's llvm-tools): the image" \
     "carries the kernel with its debug information, and needs more RAM to boot" >&2
cp "$kernel" "$out"
