# baton: build, run and test. See README.md.
#
#   make / make kernel   build the kernel ELF (build/baton)
#   make iso             hybrid UEFI/BIOS ISO (build/baton.iso)
#   make hdd             GPT disk with an EFI system partition (build/baton.hdd)
#   make run             QEMU (q35, OVMF), serial on the terminal
#   make run-bios        the same under SeaBIOS
#   make run-hdd         the disk image as a USB stick under OVMF
#   make debug           an unoptimised kernel in QEMU waiting for GDB (then:
#                        gdb -x baton.gdb; see docs/gdb.md), with nokaslr
#                        added to CMDLINE
#   make test            rustfmt, clippy, host tests, QEMU boot tests
#   make bench           time the page-table builder against per-page mapping
#                        (table in build/bench.md; with BENCH=filter in
#                        build/bench-filtered.md), and the screen console's
#                        cost per log line and per scroll
#   make bench-boot      boot on 1 GiB, 64 GiB and 1 TiB guests (sparse
#                        file-backed RAM), self-tests at 1 and 16 GiB: time
#                        and QEMU's memory per size (table in
#                        build/bench-boot.md; BENCH_BOOT='--runs 5 ...')
#   make fuzz            fuzz handoff's parsers and planner (nightly, cargo-fuzz)
#   make deps            check and install prerequisites
#
# Variables: CMDLINE='...' (baked into the image's limine.conf),
# QEMUFLAGS='...', MEM=1G, MACHINE=q35, ACCEL=tcg, OVMF=/path/to/OVMF.fd,
# OVMF_CODE=... OVMF_VARS=... (split images, as pflash), OVMF_PFLASH=1
# (prefer the split images),
# LIMINE_DIR=/path/to/limine, LIMINE_DIRS=dir1:dir2 (the releases the boot
# tests also run on; default /usr/share/limine and /usr/share/limine-*),
# SECURE_BOOT=1 SB_KEY=key.pem SB_CERT=cert.pem (make hdd: a chain signed
# for UEFI Secure Boot, docs/boot-chains.md), BOOT_TESTS='filter ...' (test names),
# DEBUG_PROFILE=release (`make debug` of the optimised kernel),
# BENCH='filter' (benchmark maps, e.g. 64TiB), BENCH_BOOT='--runs N
# --sizes 1G,64G,1T --test-sizes 1G,16G', BENCH_MEM_DIR=where the guests'
# RAM files go (default build/bench-boot), FUZZ_TIME=seconds per
# fuzz target, FUZZ_TARGETS='memmap plan ...'.

SHELL := bash
.DEFAULT_GOAL := kernel

BUILD ?= build
TARGET := x86_64-unknown-none
# The cargo profile the kernel is built with: `make debug` uses
# $(DEBUG_PROFILE) (see Cargo.toml), everything else release.
PROFILE ?= release
DEBUG_PROFILE ?= gdb
KERNEL_ELF = target/$(TARGET)/$(PROFILE)/baton
KERNEL := $(BUILD)/baton
ISO := $(BUILD)/baton.iso
HDD := $(BUILD)/baton.hdd

CMDLINE ?=
QEMUFLAGS ?=
MEM ?= 1G
MACHINE ?= q35
ACCEL ?= tcg
BOOT_TESTS ?=
BENCH ?=
BENCH_BOOT ?=
FUZZ_TIME ?= 30
FUZZ_TARGETS ?= memmap normalise efi_runtime plan pe

export BUILD_DIR := $(BUILD)
export BATON_CMDLINE := $(value CMDLINE)
export OVMF OVMF_CODE OVMF_VARS OVMF_PFLASH
export LIMINE_DIR LIMINE_DIRS
export SECURE_BOOT SB_KEY SB_CERT
export BENCH_MEM_DIR

# OVMF's QEMU arguments, into the bash array fw: `-bios OVMF.fd`, or the
# split images as pflash with a fresh copy of the variable store in
# $(BUILD)/ovmf-vars.fd (iso/find-ovmf.sh says which and why).
OVMF_ARGS = fw=$$(iso/find-ovmf.sh --qemu $(BUILD)/ovmf-vars.fd) && mapfile -t fw <<< "$$fw" &&
QEMU := qemu-system-x86_64
QEMU_BASE = -M $(MACHINE) -accel $(ACCEL) -m $(MEM) -serial mon:stdio -display none \
	-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04
# isa-debug-exit ends QEMU with 33 for a clean power-off or passing tests.
QEMU_OK = || [ $$? -eq 33 ]

.PHONY: all kernel iso hdd run run-bios run-hdd debug deps test fmt-check clippy \
	host-test boot-test bench bench-boot fuzz fuzz-tools fuzz-merge clean

all: kernel

kernel:
	cargo build -p kernel --target $(TARGET) --profile $(PROFILE)
	@mkdir -p $(BUILD)
	cp $(KERNEL_ELF) $(KERNEL)

# CMDLINE reaches the scripts through the environment, as written: never
# parsed by the shell, nor expanded by make ($(value ...)).
iso: kernel
	iso/mkiso.sh $(KERNEL) $(ISO)

hdd: kernel
	iso/mkhdd.sh $(KERNEL) $(HDD)

run: deps iso
	$(OVMF_ARGS) $(QEMU) $(QEMU_BASE) "$${fw[@]}" -cdrom $(ISO) $(QEMUFLAGS) $(QEMU_OK)

run-bios: deps iso
	$(QEMU) $(QEMU_BASE) -cdrom $(ISO) $(QEMUFLAGS) $(QEMU_OK)

run-hdd: deps hdd
	$(OVMF_ARGS) $(QEMU) $(QEMU_BASE) "$${fw[@]}" -device qemu-xhci,id=xhci \
		-drive if=none,id=stick,format=raw,file=$(HDD) \
		-device usb-storage,bus=xhci.0,drive=stick $(QEMUFLAGS) $(QEMU_OK)

# build/baton (which baton.gdb loads) is then the unoptimised kernel, until
# the next build. The image boots with nokaslr: Linux's fixed bases, and the
# kernel at its link address (iso/limine-conf.sh writes `kaslr: no`), so that
# the symbols GDB loads and the addresses it shows hold from one boot to the
# next.
debug: PROFILE = $(DEBUG_PROFILE)
debug: export BATON_CMDLINE := nokaslr $(value CMDLINE)
debug: deps iso
	@echo "make debug: nokaslr on the command line (fixed layout, kernel at its link address; see docs/kaslr.md)"
	@echo "QEMU is waiting for GDB on localhost:1234. In another terminal: gdb -x baton.gdb"
	$(OVMF_ARGS) $(QEMU) $(QEMU_BASE) "$${fw[@]}" -cdrom $(ISO) -s -S $(QEMUFLAGS) $(QEMU_OK)

deps:
	@iso/deps.sh

test: deps fmt-check clippy host-test boot-test

fmt-check:
	cargo fmt --all -- --check

# Of the benchmark, only its library: its criterion harness takes a minute to
# build from scratch, so `make bench` builds that.
clippy:
	cargo clippy -p handoff --all-targets --all-features -- -D warnings
	cargo clippy -p fbcon --all-targets -- -D warnings
	cargo clippy -p boot-tests --all-targets -- -D warnings
	cargo clippy -p handoff-bench --lib -- -D warnings
	cargo clippy -p kernel --target $(TARGET) --release -- -D warnings
	cargo clippy -p kernel --target $(TARGET) --release --all-features -- -D warnings

host-test:
	cargo test -p handoff -p fbcon -p boot-tests

boot-test: kernel
	cargo run -q --release -p boot-tests -- --kernel $(KERNEL) $(BOOT_TESTS)

# Release build, criterion's samples; prints the markdown table and writes
# it to $(BUILD)/bench.md, or to $(BUILD)/bench-filtered.md when BENCH
# leaves something untimed (criterion's data goes to $(BUILD)/criterion).
bench:
	BENCH_OUT=$(abspath $(BUILD))/bench.md cargo bench -p handoff-bench --bench handoff -- $(BENCH)
	cargo bench -p handoff-bench --bench console -- $(BENCH)

# One QEMU at a time, each size --runs times (3); the table goes to
# $(BUILD)/bench-boot.md. The guests' RAM files are sparse and unlinked by
# QEMU as soon as it made them.
bench-boot: deps kernel
	cargo run -q --release -p boot-tests --bin bench-boot -- --kernel $(KERNEL) $(BENCH_BOOT)

# Fuzzing (fuzz/, its own workspace): libFuzzer through cargo-fuzz on
# nightly, with overflow checks and debug assertions on. Each target starts
# from the committed corpus (fuzz/corpus/<target>) and writes what it finds
# to fuzz/target/corpus/<target>; crashes land in fuzz/artifacts/<target>.
# `make fuzz-merge` folds new coverage into the committed corpus, which
# `cargo test -p handoff` replays.
fuzz: fuzz-tools
	@cd fuzz && for t in $(FUZZ_TARGETS); do \
		case $$t in memmap) max_len=131072 ;; *) max_len=32768 ;; esac; \
		mkdir -p target/corpus/$$t; \
		echo "fuzz: $$t for $(FUZZ_TIME) s"; \
		cargo +nightly fuzz run --debug-assertions $$t target/corpus/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_TIME) -max_len=$$max_len -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 || exit 1; \
	done

fuzz-merge: fuzz-tools
	@cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p target/corpus/$$t; \
		cargo +nightly fuzz run --debug-assertions $$t corpus/$$t target/corpus/$$t -- \
			-merge=1 -use_counters=0 -max_len=131072 || exit 1; \
	done

fuzz-tools:
	@rustup run nightly cargo --version >/dev/null 2>&1 || \
		rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz

clean:
	cargo clean
	rm -rf $(BUILD)
