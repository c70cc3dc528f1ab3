# GDB script for baton: `make debug` in one terminal, then in another:
#   gdb -x baton.gdb
# It loads the kernel's symbols (build/baton, linked at its run address, so
# no offset is needed) and attaches to QEMU's gdbstub. Then e.g.:
#   break kmain
#   continue
set confirm off
set pagination off
set disassembly-flavor intel
file build/baton
target remote localhost:1234
