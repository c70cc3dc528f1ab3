//! The EFI address space (Linux's `efi_mm`): the kernel's upper half, plus
//! the EFI window, which exists here only. It is loaded on the calling CPU
//! for the length of a runtime call and nowhere else, so the kernel's own
//! tables never map the firmware. The window's entries are not global:
//! loading the kernel's tables again drops them from the TLB.

use crate::kspace::{AddressSpace, KernelSpace};

use super::Unavailable;

static SPACE: spin::Once<AddressSpace> = spin::Once::new();

/// Makes the EFI address space, its private tables from the early frames.
pub fn create(kernel: &KernelSpace) -> Result<&'static AddressSpace, Unavailable> {
    let layout = kernel.layout();
    let window = layout.efi_window_start()..layout.efi_window_end();
    let mut early = kernel.early_frames();
    let frames = early.as_mut().ok_or(Unavailable::NoFrames)?;
    let space = kernel
        .sharing_upper_half_except(window, frames)
        .map_err(|_| Unavailable::NoFrames)?;
    Ok(SPACE.call_once(|| space))
}

/// The EFI address space, once made.
pub fn get() -> Option<&'static AddressSpace> {
    SPACE.get()
}

/// Runs `f` with `space` loaded on this CPU, then loads the kernel's
/// tables again. The EFI address space first brings over what changed in
/// the kernel's upper half since it was made (a new vmalloc stack, say);
/// the temporary space of SetVirtualAddressMap, made just before its one
/// call, needs nothing. The caller keeps interrupts off and other callers
/// out.
pub fn with_loaded<R>(kernel: &KernelSpace, space: &AddressSpace, f: impl FnOnce() -> R) -> R {
    if get().is_some_and(|efi| core::ptr::eq(efi, space)) {
        space.sync_from(kernel);
    }
    // SAFETY: the space shares the kernel's upper half (this code, its
    // stacks and data, the EFI call stack), up to date.
    unsafe { space.activate() };
    let result = f();
    // SAFETY: the kernel's own tables.
    unsafe { kernel.activate() };
    result
}
