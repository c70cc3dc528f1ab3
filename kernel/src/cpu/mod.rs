//! CPU state baton owns from its first instructions: stacks, GDT, TSS, IDT.

use core::cell::UnsafeCell;

pub mod features;
pub mod gdt;
pub mod tests;
pub mod trap;

/// A stack in the kernel image (`.bss`), 16-byte aligned. The interior
/// mutability keeps it out of read-only memory: the CPU writes it.
#[repr(C, align(16))]
pub struct Stack<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: Rust code never reads or writes a stack's content; only the CPU
// does, through RSP, on the one CPU that runs on it.
unsafe impl<const N: usize> Sync for Stack<N> {}

impl<const N: usize> Stack<N> {
    /// A zeroed stack.
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; N]))
    }

    /// The bounds `[bottom, top)` of the stack.
    pub fn bounds(&'static self) -> (u64, u64) {
        let bottom = self.0.get() as u64;
        (bottom, bottom + N as u64)
    }
}

/// Size of the boot stack baton switches to at entry.
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

/// The boot stack. Only the CPU writes it (through RSP).
pub static BOOT_STACK: Stack<BOOT_STACK_SIZE> = Stack::new();

/// Leaves Limine's GDT and IDT for baton's own, and makes supervisor
/// writes honour read-only pages (CR0.WP).
pub fn init() {
    gdt::init();
    trap::init();
    use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
    // SAFETY: with WP set, ring-0 writes to read-only pages fault, which is
    // what every read-only mapping in baton means. SSE on (baton itself is
    // built soft-float, but the firmware's runtime services may use SSE,
    // and FXSAVE needs OSFXSR): MP set, EM and TS clear, OSFXSR and
    // OSXMMEXCPT set.
    unsafe {
        Cr0::update(|f| {
            f.insert(Cr0Flags::WRITE_PROTECT | Cr0Flags::MONITOR_COPROCESSOR);
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    };
}

/// The current stack pointer.
#[inline(always)]
pub fn rsp() -> u64 {
    let rsp: u64;
    // SAFETY: reads RSP; no memory access, no flags changed.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags))
    };
    rsp
}
