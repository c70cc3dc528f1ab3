//! Calling into the firmware the way the UEFI calling convention wants:
//! one call at a time, on a stack of its own, with the x87/SSE state set to
//! what the specification requires (MXCSR 0x1f80, x87 control word 0x037f)
//! and baton's own floating-point state saved around the call.

use core::arch::asm;

use crate::cpu::Stack;

/// Stack for firmware calls (UEFI asks boot-time callers for 128 KiB).
const EFI_STACK_SIZE: usize = 128 * 1024;
static EFI_STACK: Stack<EFI_STACK_SIZE> = Stack::new();

/// A vmalloc stack with guard pages, once memory services can give one
/// (0 until then: the first calls, SetVirtualAddressMap among them, run on
/// `EFI_STACK`).
static GUARDED_TOP: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Moves firmware calls to a stack with guard pages (from vmalloc).
pub fn use_stack(top: u64) {
    GUARDED_TOP.store(top, core::sync::atomic::Ordering::SeqCst);
}

/// Serialises firmware calls: runtime services are not reentrant.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// Runs `f` (which calls the firmware) under the lock, on the EFI stack,
/// with the UEFI floating-point environment.
pub fn call<R>(f: impl FnOnce() -> R) -> R {
    let _guard = LOCK.lock();
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut saved = FxArea([0; 512]);
        // SAFETY: FXSAVE/FXRSTOR need CR4.OSFXSR (set by cpu::init) and a
        // 16-byte aligned 512-byte area, which `FxArea` is. FNINIT gives the
        // x87 control word 0x037f and LDMXCSR the MXCSR UEFI specifies.
        unsafe {
            asm!("fxsave64 [{}]", in(reg) saved.0.as_mut_ptr(), options(nostack));
            let mxcsr: u32 = 0x1f80;
            asm!("fninit", "ldmxcsr [{}]", in(reg) &mxcsr, options(nostack));
        }
        let mut result = None;
        let mut f = Some(f);
        let mut run = || result = Some((f.take().expect("called once"))());
        let top = match GUARDED_TOP.load(core::sync::atomic::Ordering::SeqCst) {
            0 => EFI_STACK.bounds().1,
            top => top,
        };
        crate::cpu::on_stack(top, &mut run);
        // SAFETY: restores the state saved above from the same area.
        unsafe { asm!("fxrstor64 [{}]", in(reg) saved.0.as_ptr(), options(nostack)) };
        result.expect("the closure ran")
    })
}
