//! Calls into foreign code (the firmware's runtime services) whose
//! exceptions do not stop the kernel: [`guarded`] runs a function on a
//! stack of its own with the caller's registers saved; an exception whose
//! RIP lies outside baton's image while the guard is armed on this CPU
//! unwinds to the caller instead (Linux's
//! `efi_crash_gracefully_on_page_fault`, for every exception). An
//! exception in baton's own code stays fatal.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::apic;
use super::frame::TrapFrame;

/// One CPU's guard: the caller's stack pointer and callee-saved registers
/// (written by the assembly below, in this order), whether it is armed,
/// and the exception that ended the call.
#[repr(C)]
struct Guard {
    /// RSP, RBX, RBP, R12-R15 at the call.
    saved: [AtomicU64; 7],
    armed: AtomicU64,
    vector: AtomicU64,
    error_code: AtomicU64,
    rip: AtomicU64,
    cr2: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // Used only to fill GUARDS.
const GUARD: Guard = Guard {
    saved: [const { AtomicU64::new(0) }; 7],
    armed: AtomicU64::new(0),
    vector: AtomicU64::new(0),
    error_code: AtomicU64::new(0),
    rip: AtomicU64::new(0),
    cr2: AtomicU64::new(0),
};

/// Per CPU, by APIC ID.
static GUARDS: [Guard; 256] = [GUARD; 256];

fn this_guard() -> &'static Guard {
    &GUARDS[apic::id() as usize & 0xff]
}

/// The exception that ended a [`guarded`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForeignFault {
    /// The exception vector.
    pub vector: u64,
    /// Its error code (0 for exceptions without one).
    pub error_code: u64,
    /// Where the foreign code faulted.
    pub rip: u64,
    /// CR2 (the faulting address of a page fault).
    pub cr2: u64,
}

// `baton_guarded_call(guard, stack_top, closure)`: saves the caller's RSP
// and callee-saved registers in `guard`, switches to `stack_top` and calls
// the closure through `trampoline`; returns 0. The trap handler resumes an
// aborted call at `baton_guarded_abort` with RDI = `guard`, which restores
// the caller's registers and returns 1 to it.
global_asm!(
    r#"
    .section .text.baton_guarded_call, "ax"
    .global baton_guarded_call
baton_guarded_call:
    mov [rdi], rsp
    mov [rdi + 8], rbx
    mov [rdi + 16], rbp
    mov [rdi + 24], r12
    mov [rdi + 32], r13
    mov [rdi + 40], r14
    mov [rdi + 48], r15
    mov rbx, rdi
    mov rsp, rsi
    mov rdi, rdx
    call {trampoline}
    mov rdi, rbx
    xor eax, eax
    jmp 2f
    .global baton_guarded_abort
baton_guarded_abort:
    mov eax, 1
2:
    mov rsp, [rdi]
    mov rbx, [rdi + 8]
    mov rbp, [rdi + 16]
    mov r12, [rdi + 24]
    mov r13, [rdi + 32]
    mov r14, [rdi + 40]
    mov r15, [rdi + 48]
    ret
    "#,
    trampoline = sym trampoline,
);

unsafe extern "C" {
    /// `f` is a `*mut &mut dyn FnMut()`, passed through to `trampoline`.
    fn baton_guarded_call(guard: *const Guard, stack_top: u64, f: *mut core::ffi::c_void) -> u64;
    fn baton_guarded_abort();
}

extern "C" fn trampoline(f: *mut core::ffi::c_void) {
    // SAFETY: `guarded` passes a pointer to its live `&mut dyn FnMut`.
    unsafe { (*(f as *mut &mut dyn FnMut()))() }
}

/// Runs `f` with RSP at `stack_top`; if foreign code that `f` calls raises
/// an exception, the call ends there and the exception is returned. Not
/// reentrant on one CPU.
///
/// # Safety
///
/// `stack_top` is the 16-byte aligned top of a stack nothing else uses
/// while `f` runs. An exception discards `f`'s frames and those of what it
/// called without running any destructor: `f` must hold nothing (a lock
/// guard, a `Box`) whose drop matters across the foreign call.
pub unsafe fn guarded(stack_top: u64, f: &mut dyn FnMut()) -> Result<(), ForeignFault> {
    let guard = this_guard();
    guard.armed.store(1, Ordering::SeqCst);
    let mut f = f;
    // SAFETY: the assembly saves every register the C ABI asks a callee to
    // preserve and restores them (and RSP) before returning, on either
    // path; `f` runs on a stack of its own; the guard lives in a static.
    let aborted = unsafe {
        baton_guarded_call(
            guard,
            stack_top,
            &mut f as *mut &mut dyn FnMut() as *mut core::ffi::c_void,
        )
    };
    guard.armed.store(0, Ordering::SeqCst);
    if aborted == 0 {
        return Ok(());
    }
    Err(ForeignFault {
        vector: guard.vector.load(Ordering::SeqCst),
        error_code: guard.error_code.load(Ordering::SeqCst),
        rip: guard.rip.load(Ordering::SeqCst),
        cr2: guard.cr2.load(Ordering::SeqCst),
    })
}

/// Whether `rip` lies in baton's own image.
fn in_kernel_image(rip: u64) -> bool {
    unsafe extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }
    // SAFETY: only the addresses of the linker symbols are taken.
    let (start, end) = unsafe {
        (
            &__kernel_start as *const u8 as u64,
            &__kernel_end as *const u8 as u64,
        )
    };
    (start..end).contains(&rip)
}

/// Called by the trap handler for an exception nothing else handled: if
/// this CPU runs a guarded call and the exception is in foreign code,
/// records it and resumes the guarded call's caller. False otherwise.
pub(super) fn recover(frame: &mut TrapFrame) -> bool {
    let guard = this_guard();
    // Faults and traps only: not an NMI (2), a breakpoint (3) or a
    // machine check (18), which say nothing about the foreign code.
    let fault = frame.vector < 32 && !matches!(frame.vector, 2 | 3 | 18);
    if guard.armed.load(Ordering::SeqCst) == 0 || !fault || in_kernel_image(frame.rip) {
        return false;
    }
    guard.armed.store(0, Ordering::SeqCst);
    guard.vector.store(frame.vector, Ordering::SeqCst);
    guard.error_code.store(frame.error_code, Ordering::SeqCst);
    guard.rip.store(frame.rip, Ordering::SeqCst);
    guard.cr2.store(
        x86_64::registers::control::Cr2::read_raw(),
        Ordering::SeqCst,
    );
    frame.rip = baton_guarded_abort as *const () as u64;
    frame.rdi = guard as *const Guard as u64;
    frame.rsp = guard.saved[0].load(Ordering::SeqCst);
    // The C ABI wants the direction flag clear; AC (bit 18) off too, for
    // SMAP.
    frame.rflags &= !((1 << 10) | (1 << 18));
    true
}
