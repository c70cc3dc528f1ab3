//! Faults provoked on purpose (`fault=` in test runs): each must be
//! reported exactly by the exception handlers and stop the machine with
//! the failure verdict, never a triple fault.

use core::arch::asm;

use handoff::cmdline::Fault;
use log::info;

use crate::{cpu, kspace};

/// A constant in `.rodata`, the target of `fault=rodata`.
static RODATA_TARGET: u64 = 0x0ba7_0ba7;

/// Provokes `fault`. Returns only if the CPU did not fault, which the
/// caller reports as a failure. Never inlined: fault reports name it.
#[inline(never)]
pub fn provoke(fault: Fault) {
    // The other CPUs busy with interrupts off: the fatal path must stop
    // them all the same. Not while the heap runs dry: its undo shoots
    // TLBs down, which busy CPUs would leave unanswered.
    if cpu::ipi::online() > 1 && fault != Fault::HeapOutOfFrames {
        let n = cpu::ipi::occupy_others();
        info!("fault: {n} other CPUs spin with interrupts off");
    }
    info!("fault: provoking {fault:?}");
    match fault {
        Fault::NullRead => {
            // SAFETY: none; this read of address 0 is meant to fault in
            // the empty lower half.
            unsafe { asm!("mov {0}, qword ptr [0]", out(reg) _, options(nostack)) };
        }
        Fault::RodataWrite => {
            let target = &RODATA_TARGET as *const u64 as u64;
            // SAFETY: none; the write is meant to fault on a read-only page.
            unsafe { asm!("mov qword ptr [{0}], {0}", in(reg) target, options(nostack)) };
        }
        Fault::PhysmapExec => {
            let kernel = kspace::get();
            // The physmap alias of baton's own root table: RAM, mapped,
            // never executable.
            let target = kernel
                .phys_to_virt(kernel.root().start_address(), 8)
                .expect("page tables are RAM, in the physmap");
            // SAFETY: none; the call is meant to fault on fetching from a
            // non-executable page.
            unsafe { asm!("call {0}", in(reg) target, clobber_abi("C")) };
        }
        Fault::StackOverflow => {
            let depth = recurse(0);
            info!("fault: recursion returned at depth {depth}");
        }
        Fault::VmallocStackOverflow => {
            let Ok(stack) = crate::mm::vmalloc::stack(32 * 1024) else {
                log::error!("fault: no vmalloc stack");
                return;
            };
            info!(
                "fault: recursing on the vmalloc stack {:#x}-{:#x}",
                stack.guard().1,
                stack.top()
            );
            cpu::on_stack(stack.top(), &mut || {
                recurse(0);
            });
        }
        Fault::HeapOutOfMemory => {
            // Twice the heap's whole reservation.
            let size = 2 * crate::mm::heap::reserved() as usize;
            let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(size);
            info!("fault: got {} bytes", v.capacity());
        }
        Fault::HeapOutOfFrames => {
            // Small steps, kept for good: the heap grows until the frame
            // allocator has nothing left, before its reservation (larger
            // than all RAM) is used up.
            const CHUNK: usize = 1 << 20;
            let mut total = 0usize;
            loop {
                let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(CHUNK);
                core::mem::forget(v);
                total += CHUNK;
                if total.is_multiple_of(32 * CHUNK) {
                    info!("fault: the heap holds {} MiB", total >> 20);
                }
            }
        }
        Fault::InConsole => {
            // The read happens while the console formats this line, its
            // locks held and the line half written.
            info!("fault: inside the console: {}", NullInDisplay);
        }
        Fault::InvalidOpcode => {
            // SAFETY: none; ud2 raises #UD.
            unsafe { asm!("ud2", options(nostack)) };
        }
    }
}

/// Reads address 0 when displayed: a fault from inside the console.
struct NullInDisplay;

impl core::fmt::Display for NullInDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: none; this read of address 0 is meant to fault in the
        // empty lower half.
        unsafe { asm!("mov {0}, qword ptr [0]", out(reg) _, options(nostack)) };
        f.write_str("(not reached)")
    }
}

/// Recurses with 512-byte frames until the boot stack's guard page.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    if core::hint::black_box(depth) == u64::MAX {
        return frame[0];
    }
    recurse(depth + 1) + frame[1]
}
