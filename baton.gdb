# GDB script for baton: `make debug` in one terminal, then in another:
#   gdb -x baton.gdb
# It loads the kernel's symbols (build/baton, linked where `make debug`'s
# nokaslr image runs, so no offset is needed; for an image Limine moved,
# `symbol-file build/baton -o SLIDE` with the slide the boot log names)
# and attaches to QEMU's gdbstub. Then e.g.:
#   break kmain
#   continue
set confirm off
set pagination off
set disassembly-flavor intel
file build/baton
target remote localhost:1234
