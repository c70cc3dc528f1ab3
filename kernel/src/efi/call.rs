//! Calling into the firmware the way the UEFI calling convention wants, and
//! without trusting it: one call at a time, in an address space that maps
//! the firmware (the kernel's tables do not), on a stack of its own, with
//! the x87/SSE state set to what the specification requires (MXCSR 0x1f80,
//! x87 control word 0x037f) and baton's own floating-point state saved
//! around the call. An exception in the firmware ends the call with
//! `EFI_ABORTED` and switches runtime services off for good; one in baton's
//! own code stays fatal.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use handoff::efi::services::{Service, Supported};
use log::error;
use uefi_raw::Status;

use crate::cpu::Stack;
use crate::cpu::guard::{self, ForeignFault};
use crate::kspace::{self, AddressSpace};

/// Stack for firmware calls (UEFI asks boot-time callers for 128 KiB).
const EFI_STACK_SIZE: usize = 128 * 1024;
static EFI_STACK: Stack<EFI_STACK_SIZE> = Stack::new();

/// A vmalloc stack with guard pages, once memory services can give one
/// (0 until then: the first calls, SetVirtualAddressMap among them, run on
/// `EFI_STACK`).
static GUARDED_TOP: AtomicU64 = AtomicU64::new(0);

/// Moves firmware calls to a stack with guard pages (from vmalloc).
pub fn use_stack(top: u64) {
    GUARDED_TOP.store(top, Ordering::SeqCst);
}

/// Serialises firmware calls: runtime services are not reentrant.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Off once the firmware faulted: no call enters it again.
static OFF: AtomicBool = AtomicBool::new(false);

/// The services the firmware supports (`EFI_RT_PROPERTIES_TABLE`).
static SUPPORTED: AtomicU32 = AtomicU32::new(Supported::ALL.mask());

/// Calls that entered the firmware, for the self-tests.
static ENTERED: AtomicU64 = AtomicU64::new(0);

/// Records which services the firmware says it supports.
pub fn set_supported(supported: Supported) {
    SUPPORTED.store(supported.mask(), Ordering::SeqCst);
}

/// Which services the firmware says it supports.
pub fn supported() -> Supported {
    Supported::from_mask(SUPPORTED.load(Ordering::SeqCst))
}

/// Whether runtime services were switched off after a firmware fault.
pub fn off() -> bool {
    OFF.load(Ordering::SeqCst)
}

/// How many calls entered the firmware so far.
pub fn entered() -> u64 {
    ENTERED.load(Ordering::SeqCst)
}

#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// Calls `service` through `f` in `space` (the EFI address space, or the
/// temporary one of SetVirtualAddressMap), under the lock, on the EFI
/// stack, with the UEFI floating-point environment. Returns the firmware's
/// status; `EFI_UNSUPPORTED` without entering the firmware when it does
/// not support the service or runtime services are off; `EFI_ABORTED`
/// when the firmware faulted (runtime services are off from then on).
pub fn call(service: Service, space: &AddressSpace, f: impl FnOnce() -> Status) -> Status {
    let _guard = LOCK.lock();
    if off() || !supported().supports(service) {
        return Status::UNSUPPORTED;
    }
    let kernel = kspace::get();
    ENTERED.fetch_add(1, Ordering::SeqCst);
    let outcome = x86_64::instructions::interrupts::without_interrupts(|| {
        super::space::with_loaded(kernel, space, || with_uefi_fpu(|| on_efi_stack(f)))
    });
    match outcome {
        Ok(status) => status,
        Err(fault) => {
            contain(service, &fault);
            Status::ABORTED
        }
    }
}

/// Runs `f` on the EFI stack, guarded: an exception in the firmware ends it.
fn on_efi_stack(f: impl FnOnce() -> Status) -> Result<Status, ForeignFault> {
    let mut status = Status::ABORTED;
    let mut f = Some(f);
    let mut run = || status = (f.take().expect("called once"))();
    let top = match GUARDED_TOP.load(Ordering::SeqCst) {
        0 => EFI_STACK.bounds().1,
        top => top,
    };
    // SAFETY: the EFI stack is used by nothing else (calls are serialised
    // by the caller's lock); `run` holds only the firmware call's
    // arguments and the status slot, nothing whose drop matters, and the
    // caller's lock guard lives in the caller's frame, above this one.
    unsafe { guard::guarded(top, &mut run) }?;
    Ok(status)
}

/// Runs `f` with the x87/SSE state UEFI specifies, baton's saved around it.
fn with_uefi_fpu<R>(f: impl FnOnce() -> R) -> R {
    let mut saved = FxArea([0; 512]);
    // SAFETY: FXSAVE/FXRSTOR need CR4.OSFXSR (set by cpu::init) and a
    // 16-byte aligned 512-byte area, which `FxArea` is. FNINIT gives the
    // x87 control word 0x037f and LDMXCSR the MXCSR UEFI specifies.
    unsafe {
        asm!("fxsave64 [{}]", in(reg) saved.0.as_mut_ptr(), options(nostack));
        let mxcsr: u32 = 0x1f80;
        asm!("fninit", "ldmxcsr [{}]", in(reg) &mxcsr, options(nostack));
    }
    let result = f();
    // SAFETY: restores the state saved above from the same area.
    unsafe { asm!("fxrstor64 [{}]", in(reg) saved.0.as_ptr(), options(nostack)) };
    result
}

/// Logs a firmware fault once and switches runtime services off.
fn contain(service: Service, fault: &ForeignFault) {
    if OFF.swap(true, Ordering::SeqCst) {
        return;
    }
    error!(
        "efi: firmware fault in {service}: {} (vector {}) at RIP {:#x}, error code {:#x}, \
         CR2 {:#x}",
        handoff::fault::exception_name(fault.vector),
        fault.vector,
        fault.rip,
        fault.error_code,
        fault.cr2
    );
    error!("efi: the call returns EFI_ABORTED; runtime services are off for the rest of the boot");
}
