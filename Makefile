# baton: build, run and test. `make help` prints the two lists below.
#
# Targets:
#   kernel          the kernel ELF, build/baton (the default goal)
#   all             the same as kernel
#   iso             hybrid UEFI/BIOS ISO, build/baton.iso
#   hdd             GPT disk with an EFI system partition, build/baton.hdd
#   run             boot the ISO in QEMU (q35, OVMF), serial on the terminal
#   run-bios        the same under SeaBIOS
#   run-hdd         boot the disk image as a USB stick under OVMF
#   debug           like run, an unoptimised kernel with nokaslr, QEMU waiting for GDB (docs/gdb.md)
#   test            everything CI runs: deps fmt-check clippy doc host-test script-test boot-test
#   fmt-check       cargo fmt --check on every crate
#   clippy          clippy -D warnings on every crate
#   doc             cargo doc --no-deps on every crate, warnings as errors
#   host-test       host tests of handoff, fbcon and the test runner; handoff's example; cargo package -p handoff
#   script-test     tests of the Makefile's and scripts' checks (tests/scripts/)
#   boot-test       QEMU boot tests (BOOT_TESTS, JOBS)
#   bench           time the page-table builder against per-page mapping, and the screen console (BENCH)
#   bench-boot      boot on 1 GiB, 64 GiB and 1 TiB guests (sparse file-backed RAM), self-tests
#                   at 1 and 16 GiB: time and QEMU's memory per size (build/bench-boot.md)
#   fuzz            fuzz handoff's parsers and planner (nightly, cargo-fuzz)
#   fuzz-merge      fold new fuzzing coverage into fuzz/corpus
#   fuzz-tools      install the nightly toolchain and cargo-fuzz when missing
#   mutants         mutation-test handoff's core modules with cargo-mutants: hours, not
#                   part of test (MUTANTS_SHARD, MUTANTS_CASES; docs/testing.md)
#   deps            check prerequisites, install what can be installed
#   help            print these lists
#   clean           remove target/ and build/
#
# Variables (make TARGET VAR=value):
#   CMDLINE='...'   kernel command line, baked into the image's limine.conf
#   MEM=1G          guest RAM, as QEMU's -m reads it; the run targets refuse too little
#   QEMUFLAGS='...' more QEMU arguments, e.g. '-smp 4 -cpu max'
#   MACHINE=q35     QEMU machine
#   ACCEL=tcg       QEMU accelerator (kvm where /dev/kvm works)
#   OVMF=...        a combined OVMF.fd, loaded with -bios
#   OVMF_CODE=...   OVMF's split code image, as pflash (with OVMF_VARS)
#   OVMF_VARS=...   OVMF's split variable-store template (with OVMF_CODE)
#   OVMF_PFLASH=1   prefer the split images to a combined OVMF.fd
#   LIMINE_DIR=...  a directory holding Limine's binary release
#   LIMINE_DIRS=a:b the Limine releases the boot tests also run on (default: /usr/share/limine and /usr/share/limine-*)
#   SECURE_BOOT=1   make hdd signs its boot chain for Secure Boot (with SB_KEY, SB_CERT)
#   SB_KEY=key.pem  the Secure Boot signing key (with SECURE_BOOT=1)
#   SB_CERT=c.pem   the Secure Boot certificate (with SECURE_BOOT=1)
#   BOOT_TESTS='..' boot-test cases whose name contains one of the words
#   JOBS=N          boot tests run at once (default: one per CPU)
#   BENCH=filter    benchmark maps whose id contains it (--test: time nothing)
#   BENCH_BOOT='..' make bench-boot's options: --runs N --sizes 1G,64G,1T --test-sizes 1G,16G
#   BENCH_MEM_DIR=. where bench-boot's guests' RAM files go (default build/bench-boot)
#   FUZZ_TIME=30    seconds per fuzz target
#   FUZZ_TARGETS=.. fuzz targets to run (memmap normalise efi_runtime plan pe)
#   MUTANTS_SHARD=k/n make mutants runs every n-th mutant, from the k-th (k from 0)
#   MUTANTS_CASES=8 property-test cases per test in a mutants run
#   MUTANTS_ARGS=.. more cargo-mutants options, e.g. '-f handoff/src/memmap/*.rs'
#   BUILD=build     where images, logs and tables go
#   PROFILE=release the cargo profile the kernel is built with
#   DEBUG_PROFILE=gdb the profile make debug builds with (release: the optimised kernel)

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
# What the images carry: the kernel without its debug information
# (iso/image-kernel.sh); GDB reads that from $(KERNEL).
IMAGE_KERNEL := $(BUILD)/baton-image
ISO := $(BUILD)/baton.iso
HDD := $(BUILD)/baton.hdd

CMDLINE ?=
QEMUFLAGS ?=
MEM ?= 1G
MACHINE ?= q35
ACCEL ?= tcg
BOOT_TESTS ?=
JOBS ?=
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

# Checks that need nothing built run while make reads this file, so that a
# typo or too little memory stops make before `deps` installs anything or
# anything is built, whatever the order (or -j) make would run targets in.
# check: the command's error output becomes make's error when it fails.
check = $(eval check_out := $(shell $(1) 2>&1 >/dev/null))$(if \
	$(filter 0,$(.SHELLSTATUS)),,$(error $(check_out)))
quote = '$(subst ','\'',$(1))'
PATH_GOALS := deps iso hdd run run-bios run-hdd debug test boot-test
ifneq ($(filter $(PATH_GOALS),$(MAKECMDGOALS)),)
$(call check,OVMF=$(call quote,$(OVMF)) OVMF_CODE=$(call quote,$(OVMF_CODE)) \
	OVMF_VARS=$(call quote,$(OVMF_VARS)) LIMINE_DIR=$(call quote,$(LIMINE_DIR)) \
	iso/check-paths.sh)
endif
# The least RAM each boot needs is measured, and explained, in
# iso/check-mem.sh. It grows with the kernel file, which Limine reads
# whole: here the image's copy of the last one built, if any; the recipes
# check again with the one they boot.
MEM_CHECK = iso/check-mem.sh $(1) $(call quote,$(MEM)) $(wildcard $(IMAGE_KERNEL))
$(foreach goal,$(filter run debug,$(MAKECMDGOALS)),$(call check,$(call MEM_CHECK,uefi-cd)))
$(foreach goal,$(filter run-hdd,$(MAKECMDGOALS)),$(call check,$(call MEM_CHECK,uefi-usb)))
$(foreach goal,$(filter run-bios,$(MAKECMDGOALS)),$(call check,$(call MEM_CHECK,bios)))

# OVMF's QEMU arguments, into the bash array fw: `-bios OVMF.fd`, or the
# split images as pflash with a fresh copy of the variable store in
# $(BUILD)/ovmf-vars.fd (iso/find-ovmf.sh says which and why).
OVMF_ARGS = fw=$$(iso/find-ovmf.sh --qemu $(BUILD)/ovmf-vars.fd) && mapfile -t fw <<< "$$fw" &&
QEMU := qemu-system-x86_64
QEMU_BASE = -M $(MACHINE) -accel $(ACCEL) -m $(MEM) -serial mon:stdio -display none \
	-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04
# isa-debug-exit ends QEMU with 33 for a clean power-off or passing tests.
QEMU_OK = || [ $$? -eq 33 ]

.PHONY: all kernel iso hdd run run-bios run-hdd debug deps test fmt-check clippy doc \
	host-test script-test boot-test bench bench-boot fuzz fuzz-tools fuzz-merge mutants help clean

all: kernel

kernel:
	cargo build -p kernel --target $(TARGET) --profile $(PROFILE)
	@mkdir -p $(BUILD)
	cp $(KERNEL_ELF) $(KERNEL)
	iso/image-kernel.sh $(KERNEL) $(IMAGE_KERNEL)

# CMDLINE reaches the scripts through the environment, as written: never
# parsed by the shell, nor expanded by make ($(value ...)).
iso: kernel
	iso/mkiso.sh $(KERNEL) $(ISO)

hdd: kernel
	iso/mkhdd.sh $(KERNEL) $(HDD)

run: deps iso
	@$(call MEM_CHECK,uefi-cd)
	$(OVMF_ARGS) $(QEMU) $(QEMU_BASE) "$${fw[@]}" -cdrom $(ISO) $(QEMUFLAGS) $(QEMU_OK)

run-bios: deps iso
	@$(call MEM_CHECK,bios)
	$(QEMU) $(QEMU_BASE) -cdrom $(ISO) $(QEMUFLAGS) $(QEMU_OK)

run-hdd: deps hdd
	@$(call MEM_CHECK,uefi-usb)
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
	@$(call MEM_CHECK,uefi-cd)
	@echo "make debug: nokaslr on the command line (fixed layout, kernel at its link address; see docs/kaslr.md)"
	@echo "QEMU is waiting for GDB on localhost:1234. In another terminal: gdb -x baton.gdb"
	$(OVMF_ARGS) $(QEMU) $(QEMU_BASE) "$${fw[@]}" -cdrom $(ISO) -s -S $(QEMUFLAGS) $(QEMU_OK)

deps:
	@iso/deps.sh

test: deps fmt-check clippy doc host-test script-test boot-test

help:
	@sed -n '/^# Targets:/,/^$$/s/^# \{0,1\}//p' Makefile

fmt-check:
	cargo fmt --all -- --check

# Of the benchmark, only its library: its criterion harness takes minutes to
# build from scratch (docs/benchmarks.md), so `make bench` builds that.
clippy:
	cargo clippy -p handoff --all-targets --all-features -- -D warnings
	cargo clippy -p fbcon --all-targets -- -D warnings
	cargo clippy -p boot-tests --all-targets -- -D warnings
	cargo clippy -p handoff-bench --lib -- -D warnings
	cargo clippy -p kernel --target $(TARGET) --release -- -D warnings
	cargo clippy -p kernel --target $(TARGET) --release --all-features -- -D warnings

# Every crate's documentation, as docs.rs would build it; a broken or
# private intra-doc link is an error. (fuzz/ is a nightly workspace of its
# own, left to `make fuzz`.)
doc:
	RUSTDOCFLAGS='-D warnings' cargo doc --no-deps -p handoff -p fbcon -p boot-tests -p handoff-bench
	RUSTDOCFLAGS='-D warnings' cargo doc --no-deps -p handoff --all-features
	RUSTDOCFLAGS='-D warnings' cargo doc --no-deps -p kernel --target $(TARGET) --release
	RUSTDOCFLAGS='-D warnings' cargo doc --no-deps -p kernel --target $(TARGET) --release --all-features

# handoff's example (parse -> plan -> build on the host) runs as a test;
# `cargo package` checks that the crate packages and builds on its own
# (offline: the workspace's build has fetched its dependencies).
host-test:
	cargo test -p handoff -p fbcon -p boot-tests
	cargo test -p handoff --examples
	cargo package -q -p handoff --allow-dirty --offline

script-test:
	tests/scripts/run.sh

boot-test: kernel
	cargo run -q --release -p boot-tests -- --kernel $(KERNEL) $(if $(JOBS),--jobs $(JOBS)) $(BOOT_TESTS)

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
# `cargo test -p handoff` replays. memmap's maps and pe's regions of
# several runtime images (its seed is 60 KiB) get inputs up to 128 KiB.
fuzz: fuzz-tools
	@cd fuzz && for t in $(FUZZ_TARGETS); do \
		case $$t in memmap|pe) max_len=131072 ;; *) max_len=32768 ;; esac; \
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

# Mutation testing: which of handoff's core modules' mutants (memmap, plan,
# paging, efi, frames; .cargo/mutants.toml) the host tests catch. Results
# go to $(BUILD)/mutants.out. Gentle on a shared machine: niced, one mutant
# at a time, in cargo-mutants' own copy of the tree (never in place). The
# property tests run MUTANTS_CASES cases each, from a fixed seed so that
# two runs agree, and do not shrink what they find: a caught mutant needs
# no minimal counterexample.
MUTANTS_CASES ?= 8
MUTANTS_SHARD ?=
MUTANTS_ARGS ?=

mutants:
	@cargo mutants --version >/dev/null 2>&1 || { \
		echo "make mutants: cargo-mutants is not installed." >&2; \
		echo "Install it with: cargo install cargo-mutants --locked" >&2; exit 1; }
	PROPTEST_CASES=$(MUTANTS_CASES) PROPTEST_RNG_SEED=1 PROPTEST_MAX_SHRINK_ITERS=0 \
		nice -n 19 cargo mutants -j 1 --output $(BUILD) \
		$(if $(MUTANTS_SHARD),--shard $(MUTANTS_SHARD)) $(MUTANTS_ARGS)

clean:
	cargo clean
	rm -rf $(BUILD)
