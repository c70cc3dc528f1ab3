//! Fatal reports: an exception nothing handled (set as `cpu::trap`'s fatal
//! handler), and a Rust panic. Each stops the other CPUs first, prints
//! through the emergency console (the console lock may be held by the code
//! that failed) everything known, and stops the machine.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::console::EmergencyWriter;
use crate::cpu::trap::TrapFrame;
use crate::mm::vmalloc::{OVERFLOW_SLACK, overflowed_stack, stack_guard_at};
use crate::{cpu, exit, kspace};

const PAGE: u64 = 4096;

/// Reports an exception nothing handled, with everything known about it,
/// and stops the machine (the `cpu::trap` fatal handler).
pub fn exception(frame: &TrapFrame) -> ! {
    cpu::ipi::stop_others();
    let mut out = EmergencyWriter;
    let name = handoff::fault::exception_name(frame.vector);
    let _ = writeln!(
        out,
        "\nbaton: EXCEPTION {name} (vector {}) error code {:#x}",
        frame.vector, frame.error_code
    );
    let _ = writeln!(
        out,
        "  RIP {:#018x} CS {:#x} RFLAGS {:#x} RSP {:#018x} SS {:#x}",
        frame.rip, frame.cs, frame.rflags, frame.rsp, frame.ss
    );
    crate::symbols::print_rip(&mut out, frame.cs, frame.rip);
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    if frame.vector == 14 {
        page_fault(&mut out, frame, cr2);
    }
    if frame.vector == 8 {
        double_fault(&mut out, frame, cr2);
    }
    registers(&mut out, frame);
    crate::symbols::print_trace(&mut out, Some(frame.rip), Some(frame.rsp), frame.rbp);
    exit::fatal()
}

/// What a page fault's error code says, and the walk of CR2.
fn page_fault(out: &mut EmergencyWriter, frame: &TrapFrame, cr2: u64) {
    let _ = writeln!(
        out,
        "  CR2 {cr2:#018x}: {}",
        handoff::fault::PageFaultError(frame.error_code)
    );
    if let Some(path) = kspace::walk_live(cr2) {
        let _ = writeln!(out, "  page-table walk of CR2: {path}");
    }
}

/// A double fault on its IST stack: most often a push that hit a stack's
/// guard page, whose page fault could not push its frame on the same
/// stack. The saved RSP says which stack; CR2 (which a later fault may
/// have left stale) only supports it.
fn double_fault(out: &mut EmergencyWriter, frame: &TrapFrame, cr2: u64) {
    let _ = writeln!(
        out,
        "  on the double-fault IST stack (RSP {:#x}); CR2 {cr2:#018x}",
        cpu::rsp()
    );
    match overflowed_guard(out, frame) {
        Some(guard) if (guard..guard + PAGE).contains(&cr2) => {
            let _ = writeln!(out, "  CR2 is in that guard page too");
        }
        Some(_) => {
            let _ = writeln!(
                out,
                "  CR2 is not in that guard page (stale, or an earlier fault)"
            );
        }
        None => {
            let (boot_guard, boot_guard_end) = cpu::boot_stack_guard();
            let guard = if (boot_guard..boot_guard_end).contains(&cr2) {
                Some(boot_guard)
            } else {
                stack_guard_at(cr2).map(|(g, _)| g)
            };
            if let Some(g) = guard {
                let _ = writeln!(
                    out,
                    "  CR2 is in the stack guard page {g:#x}-{:#x}, but RSP is not near \
                     it: perhaps not an overflow",
                    g + PAGE
                );
            }
        }
    }
}

/// Names the stack whose guard page the saved RSP ran into, if any, and
/// returns that guard page.
fn overflowed_guard(out: &mut EmergencyWriter, frame: &TrapFrame) -> Option<u64> {
    let (boot_guard, boot_guard_end) = cpu::boot_stack_guard();
    if (boot_guard..boot_guard_end + OVERFLOW_SLACK).contains(&frame.rsp) {
        let _ = writeln!(
            out,
            "baton: kernel stack overflow: the boot stack ran into its guard page \
             {boot_guard:#x}-{boot_guard_end:#x} (RSP {:#x}, RIP {:#x})",
            frame.rsp, frame.rip
        );
        return Some(boot_guard);
    }
    let (guard, top) = overflowed_stack(frame.rsp)?;
    let _ = writeln!(
        out,
        "baton: kernel stack overflow: the vmalloc stack {:#x}-{top:#x} ran into its \
         guard page {guard:#x}-{:#x} (RSP {:#x}, RIP {:#x})",
        guard + PAGE,
        guard + PAGE,
        frame.rsp,
        frame.rip
    );
    Some(guard)
}

/// The general registers.
fn registers(out: &mut EmergencyWriter, frame: &TrapFrame) {
    let _ = writeln!(
        out,
        "  RAX {:#018x} RBX {:#018x} RCX {:#018x} RDX {:#018x}\n  RSI {:#018x} RDI {:#018x} RBP {:#018x} R8  {:#018x}\n  R9  {:#018x} R10 {:#018x} R11 {:#018x} R12 {:#018x}\n  R13 {:#018x} R14 {:#018x} R15 {:#018x}",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx,
        frame.rsi,
        frame.rdi,
        frame.rbp,
        frame.r8,
        frame.r9,
        frame.r10,
        frame.r11,
        frame.r12,
        frame.r13,
        frame.r14,
        frame.r15
    );
}

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Reports a Rust panic and stops the machine.
pub fn panic(info: &PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while reporting a panic: stop without printing more.
        cpu::halt();
    }
    cpu::ipi::stop_others();
    let location = info.location();
    crate::console::emergency_print(format_args!(
        "\nbaton: PANIC at {}:{}: {}\n",
        location.map_or("?", |l| l.file()),
        location.map_or(0, |l| l.line()),
        info.message()
    ));
    crate::symbols::print_trace_here(&mut EmergencyWriter);
    exit::fatal()
}
