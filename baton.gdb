# GDB script for baton: `make debug` in one terminal, then in another:
#   gdb -x baton.gdb
# It loads the kernel's symbols (build/baton, linked where `make debug`'s
# nokaslr image runs, so no offset is needed; for an image Limine moved,
# `symbol-file build/baton -o SLIDE` with the slide the boot log names),
# baton's helpers (baton-gdb.py: baton-walk, baton-ptdump, baton-layout,
# baton-memmap, baton-break-switch, ...) and attaches to QEMU's gdbstub.
# Then e.g.:
#   break kmain
#   continue
# docs/gdb.md walks through a session.
set confirm off
set pagination off
set disassembly-flavor intel
file build/baton
source baton-gdb.py
# QEMU's gdbstub: port 1234 (`make debug` starts QEMU with -s), or
# $BATON_GDB_PORT.
baton-connect
