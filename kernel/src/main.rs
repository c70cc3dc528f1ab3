//! baton: a Limine-booted x86_64 kernel whose early code replays the
//! firmware's memory map into page tables of its own.
//!
//! Boot order (see DESIGN.md): own stack, GDT/TSS and IDT first, so that
//! every fault prints; then the command line and console level; then the
//! Limine handover is checked and copied out of bootloader memory.
#![no_std]
#![no_main]

extern crate alloc;

mod apic;
mod boot;
mod console;
mod cpu;
mod efi;
mod exit;
mod faults;
mod fixed;
mod mm;
mod selftest;
mod shim;
mod smp;
mod symbols;
mod time;

use core::arch::naked_asm;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use handoff::cmdline::{Cmdline, Options};
use log::{error, info, warn};

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

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    console::init();
    cpu::init();
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

    info!("baton {} booting", env!("CARGO_PKG_VERSION"));
    info!(
        "cpu: own stack, GDT/TSS (IST for #DF, NMI, #MC) and IDT loaded; TSC {}.{:03} MHz ({tsc_source:?})",
        tsc_hz / 1_000_000,
        tsc_hz / 1_000 % 1_000
    );
    info!("cpu: protections: {}", cpu::protect());
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

    let boot = match boot::collect() {
        Ok(boot) => boot,
        Err(e) => {
            error!("boot: {e}");
            error!("boot: cannot continue; stopping");
            exit::fatal();
        }
    };
    symbols::init(boot);
    log_handover(boot);
    match (options.test, options.inject) {
        (true, Some(inject)) => boot::inject(inject),
        (false, Some(_)) => warn!("cmdline: inject= is honoured in test runs only; ignored"),
        _ => {}
    }

    if let Err(e) = shim::run(boot) {
        error!("handoff: {e}");
        error!("handoff: cannot continue; stopping");
        exit::fatal();
    }

    efi::init(boot);
    shim::phase_done("efi");
    shim::report_phases();
    if let Err(e) = mm::init() {
        error!("mm: {e}");
        error!("mm: cannot continue; stopping");
        exit::fatal();
    }
    efi::release_temporary_tables();
    match cpu::guard_ist_stacks() {
        Ok(()) => info!("cpu: IST stacks for #DF, NMI and #MC moved to vmalloc, with guard pages"),
        Err(e) => warn!("cpu: IST stacks stay in .bss, without guard pages: {e}"),
    }
    if efi::services().is_some() {
        match mm::vmalloc::stack(128 * 1024) {
            Ok(stack) => efi::call::use_stack(stack.top()),
            Err(e) => warn!("efi: no guarded stack ({e}); calls stay on the boot-time one"),
        }
    }
    if smp::start(boot) {
        mm::release_bootloader_memory();
    } else {
        warn!("mm: bootloader-reclaimable memory kept: a CPU may still run Limine's code there");
    }
    if options.ptdump {
        shim::ptdump();
    }
    match (options.test, options.fault) {
        (true, Some(fault)) => {
            faults::provoke(fault);
            error!("fault: {fault:?} did not fault");
            exit::fatal();
        }
        (false, Some(_)) => warn!("cmdline: fault= is honoured in test runs only; ignored"),
        _ => {}
    }

    finish(options)
}

fn log_handover(boot: &boot::BootInfo) {
    info!(
        "boot: bootloader {} {}, firmware {}",
        boot.bootloader_name,
        boot.bootloader_version,
        boot.firmware.name()
    );
    info!(
        "boot: base revision requested {}, in effect {}",
        boot::requested_revision(),
        boot.revision
    );
    info!("boot: HHDM offset {:#x}", boot.hhdm_offset);
    info!(
        "boot: kernel at physical {:#x}, virtual {:#x}",
        boot.kernel_phys, boot.kernel_virt
    );
    info!("boot: paging {}-level", boot.levels.count());
    info!("boot: command line \"{}\"", boot.cmdline);
    let raw = boot::RAW_MAPS.lock();
    match raw.efi() {
        Some((_, efi)) => info!(
            "boot: memory map: {} Limine entries, {} EFI descriptors (desc_size {}, version {})",
            raw.limine().len(),
            efi.size / efi.desc_size.max(1),
            efi.desc_size,
            efi.desc_version
        ),
        None => info!(
            "boot: memory map: {} Limine entries, no EFI memory map",
            raw.limine().len()
        ),
    }
    if let Some(fb) = boot.framebuffer {
        info!(
            "boot: framebuffer {}x{}, {} bpp, at physical {:#x}",
            fb.width, fb.height, fb.bpp, fb.phys
        );
    }
    if let Some(st) = boot.efi_system_table {
        info!("boot: EFI system table at physical {st:#x}");
    }
}

/// Ends the boot as the command line asks: self-tests, then power-off or
/// reset (through the EFI runtime services on UEFI, isa-debug-exit or the
/// keyboard controller otherwise), else idle.
fn finish(options: Options) -> ! {
    let verdict = options.test.then(|| {
        let passed = selftest::run(&[
            cpu::tests::TESTS,
            boot::TESTS,
            shim::tests::TESTS,
            efi::tests::TESTS,
            mm::tests::TESTS,
            smp::TESTS,
            symbols::TESTS,
        ]);
        if passed {
            exit::Verdict::Pass
        } else {
            exit::Verdict::Fail
        }
    });
    if options.reboot {
        if let Some(rt) = efi::services() {
            info!("reboot: EFI ResetSystem(EfiResetCold)");
            smp::stop_others();
            rt.reset(uefi_raw::table::runtime::ResetType::COLD);
            warn!("reboot: EFI ResetSystem returned; resetting through the keyboard controller");
        } else {
            info!("reboot: no EFI runtime services; resetting through the keyboard controller");
        }
        exit::keyboard_controller_reset();
    }
    if options.poweroff {
        if let Some(rt) = efi::services() {
            info!("poweroff: EFI ResetSystem(EfiResetShutdown)");
            smp::stop_others();
            rt.reset(uefi_raw::table::runtime::ResetType::SHUTDOWN);
            warn!("poweroff: EFI ResetSystem returned");
        }
        info!("poweroff: boot complete, powering off through isa-debug-exit");
        exit::qemu_exit(verdict.unwrap_or(exit::Verdict::Pass));
        warn!("poweroff: no isa-debug-exit device; halting instead");
        exit::halt();
    }
    if let Some(verdict) = verdict {
        exit::qemu_exit(verdict);
        warn!("selftest: no isa-debug-exit device to report the verdict; halting");
        exit::halt();
    }
    info!("boot complete; idling");
    exit::halt()
}

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while reporting a panic: stop without printing more.
        exit::halt();
    }
    smp::stop_others();
    let location = info.location();
    console::emergency_print(format_args!(
        "\nbaton: PANIC at {}:{}: {}\n",
        location.map_or("?", |l| l.file()),
        location.map_or(0, |l| l.line()),
        info.message()
    ));
    symbols::print_trace_here(&mut console::EmergencyWriter);
    exit::fatal()
}
