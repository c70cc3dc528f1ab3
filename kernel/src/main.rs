//! baton: a Limine-booted x86_64 kernel whose early code replays the
//! firmware's memory map into page tables of its own.
//!
//! The modules, layer by layer in the order the boot uses them; each
//! imports only from the layers above it in this list:
//!
//! - `time`, `random`, `fixed`, `selftest`, `testing`: the TSC and boot
//!   phases, the CPU's random numbers, fixed-size strings, the self-test
//!   harness, the test switches;
//! - `boot`: Limine's requests, and the copy of what baton keeps of them;
//! - `console`: the serial port and the screen, and the `log` backend;
//! - `cpu`: each CPU's state (GDT, IDT and traps, APIC, TLB, IPIs);
//! - `exit`: fatal stops, test verdicts, resets;
//! - `kspace`: the owner of the kernel's address space, and address spaces
//!   as objects;
//! - `shim`: the handoff (parse, plan, build, switch CR3, verify), which
//!   hands the kernel space over;
//! - `mm`: memory services on the kernel space;
//! - `efi`, `smp`: runtime services in an address space of their own; the
//!   other CPUs onto baton's tables;
//! - `symbols`, `oops`, `faults`: function names, fatal reports, faults
//!   provoked on purpose;
//! - this file: the order of it all.
#![no_std]
#![no_main]

extern crate alloc;

/// Limine's requests, and the copy of what baton keeps from them.
mod boot;
/// The consoles (serial, and the screen through the framebuffer) and the
/// `log` backend.
mod console;
/// Each CPU's state: stacks, GDT/TSS, IDT and traps, protections, the
/// local APIC, TLB maintenance and IPIs.
mod cpu;
/// UEFI runtime services through baton's own page tables.
mod efi;
/// Ending a run: fatal stops, isa-debug-exit verdicts, resets.
mod exit;
/// Faults provoked on purpose (`fault=`).
mod faults;
/// A string in a fixed-size buffer.
mod fixed;
/// The owner of the kernel's address space, and address spaces as objects.
mod kspace;
/// Memory services: the vmemmap, frames, vmalloc/ioremap, stacks, heap.
mod mm;
/// Fatal reports: unhandled exceptions and panics.
mod oops;
/// The CPU's random sources (RDSEED, RDRAND, the TSC) for the layout's seed.
mod random;
/// The in-kernel self-tests' harness.
mod selftest;
/// The handoff: parse, plan, build, switch CR3, verify.
mod shim;
/// The other CPUs onto baton's tables.
mod smp;
/// Function names for fault reports, from the kernel's own symbol table.
mod symbols;
/// The test switches (`inject=`, `fault=`) the other modules ask about.
mod testing;
/// Time since reset from the TSC, and the phases of the boot.
mod time;

use core::arch::naked_asm;
use core::panic::PanicInfo;

use handoff::cmdline::{Cmdline, Options};
use log::{debug, error, info, warn};

/// The ELF entry point Limine jumps to, on Limine's stack. Switches to
/// baton's boot stack in `.bss` at once and calls [`kmain`].
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    naked_asm!(
        "lea rsp, [rip + {stack} + {size}]",
        "xor ebp, ebp",
        "call {kmain}",
        "ud2",
        stack = sym cpu::BOOT_STACK,
        size = const cpu::BOOT_STACK_SIZE,
        kmain = sym kmain,
    )
}

/// The boot, stage by stage: own CPU state first, so that every fault
/// prints; then the command line; then Limine's handover is copied, the
/// handoff switches to baton's tables, and the rest of the kernel starts
/// on them.
#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    let options = early();
    let boot = boot::collect().unwrap_or_else(|e| stop("boot", e));
    symbols::init(boot);
    let mut phases = time::Phases::start();
    let drawn = console::fb::drawing_time();
    let kernel =
        shim::run(boot, options.nokaslr, &mut phases).unwrap_or_else(|e| stop("handoff", e));
    console::fb::report_switch(kernel.layout());
    efi::init(boot, kernel);
    phases.done("efi");
    let drawn = console::fb::drawing_time() - drawn;
    phases.report("handoff");
    console::fb::report_handoff_share(drawn);
    mm::init(kernel).unwrap_or_else(|e| stop("mm", e));
    efi::release_temporary_tables();
    match mm::guard_ist_stacks() {
        Ok(()) => debug!("cpu: IST stacks for #DF, NMI and #MC moved to vmalloc, with guard pages"),
        Err(e) => warn!("cpu: IST stacks stay in .bss, without guard pages: {e}"),
    }
    if efi::services().is_some() {
        match mm::vmalloc::stack(128 * 1024) {
            Ok(stack) => efi::call::use_stack(stack.top()),
            Err(e) => warn!("efi: no guarded stack ({e}); calls stay on the boot-time one"),
        }
    }
    if smp::start(boot, kernel) {
        mm::release_bootloader_memory(smp::parked());
    } else {
        warn!("mm: bootloader-reclaimable memory kept: a CPU may still run Limine's code there");
    }
    if options.ptdump {
        let _ = kernel.ptdump(&mut console::Writer);
        let _ = efi::ptdump(kernel, &mut console::Writer);
    }
    if let Some(fault) = testing::fault() {
        faults::provoke(fault);
        error!("fault: {fault:?} did not fault");
        exit::fatal();
    }
    console::fb::report_cost();
    finish(options)
}

/// baton's own stack, GDT, IDT and console, the TSC, and the command line
/// (so that `test` and `loglevel=` apply to the rest of the boot).
fn early() -> Options {
    console::init();
    cpu::init();
    cpu::trap::set_fatal_handler(oops::exception);
    let (tsc_hz, tsc_source) = time::init();
    let (cmdline_text, bad_byte) = boot::cmdline();
    let cmdline = Cmdline::parse(cmdline_text.as_str());
    let options = cmdline.options();
    if let Some(level) = options.loglevel {
        console::set_level(level);
    }
    if options.test {
        exit::set_test_mode();
    }
    console::configure(options.consoles, options.font, shim::limine_maps);
    info!("baton {} booting", env!("CARGO_PKG_VERSION"));
    debug!(
        "cpu: own stack, GDT/TSS (IST for #DF, NMI, #MC) and IDT loaded; TSC {}.{:03} MHz ({tsc_source:?})",
        tsc_hz / 1_000_000,
        tsc_hz / 1_000 % 1_000
    );
    info!("cpu: protections: {}", cpu::protect());
    console::report();
    for problem in cmdline.problems() {
        warn!("cmdline: {problem}");
    }
    if let Some(at) = bad_byte {
        warn!(
            "cmdline: not valid UTF-8: first bad byte at offset {at}; bad bytes read as U+FFFD, the \
             other options apply"
        );
    }
    if cmdline_text.truncated() {
        warn!("cmdline: longer than baton keeps; truncated");
    }
    testing::arm(&options);
    options
}

/// Logs why the boot cannot go on, and stops.
fn stop(stage: &str, error: impl core::fmt::Display) -> ! {
    error!("{stage}: {error}");
    error!("{stage}: cannot continue; stopping");
    exit::fatal()
}

/// Ends the boot as the command line asks: self-tests, then power-off or
/// reset (through the EFI runtime services on UEFI, isa-debug-exit or the
/// keyboard controller otherwise), else idle.
fn finish(options: Options) -> ! {
    let verdict = options.test.then(|| {
        let passed = selftest::run(&[
            cpu::tests::TESTS,
            console::tests::TESTS,
            boot::tests::TESTS,
            shim::handover::TESTS,
            shim::tests::TESTS,
            shim::kaslr::tests::TESTS,
            efi::tests::TESTS,
            efi::secure_boot::TESTS,
            mm::tests::TESTS,
            mm::tlb_tests::TESTS,
            smp::tests::TESTS,
            symbols::TESTS,
        ]);
        if passed {
            exit::Verdict::Pass
        } else {
            exit::Verdict::Fail
        }
    });
    if options.reboot {
        reboot();
    }
    if options.poweroff {
        poweroff(verdict);
    }
    if let Some(verdict) = verdict {
        exit::qemu_exit(verdict);
        warn!("selftest: no isa-debug-exit device to report the verdict; halting");
        cpu::halt();
    }
    info!("boot complete; idling");
    cpu::halt()
}

/// Resets the machine: EFI ResetSystem(EfiResetCold), else (or if it
/// returns) the keyboard controller.
fn reboot() -> ! {
    if let Some(rt) = efi::services() {
        info!("reboot: EFI ResetSystem(EfiResetCold)");
        cpu::ipi::stop_others();
        let status = rt.reset(uefi_raw::table::runtime::ResetType::COLD);
        warn!(
            "reboot: EFI ResetSystem returned ({status:?}); resetting through the keyboard \
             controller"
        );
    } else {
        info!("reboot: no EFI runtime services; resetting through the keyboard controller");
    }
    exit::keyboard_controller_reset()
}

/// Powers the machine off: EFI ResetSystem(EfiResetShutdown), else (or if
/// it returns) isa-debug-exit with the self-tests' verdict.
fn poweroff(verdict: Option<exit::Verdict>) -> ! {
    if let Some(rt) = efi::services() {
        info!("poweroff: EFI ResetSystem(EfiResetShutdown)");
        cpu::ipi::stop_others();
        let status = rt.reset(uefi_raw::table::runtime::ResetType::SHUTDOWN);
        warn!("poweroff: EFI ResetSystem returned ({status:?})");
    }
    info!("poweroff: boot complete, powering off through isa-debug-exit");
    exit::qemu_exit(verdict.unwrap_or(exit::Verdict::Pass));
    warn!("poweroff: no isa-debug-exit device; halting instead");
    cpu::halt()
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    oops::panic(info)
}
