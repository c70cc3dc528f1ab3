//! The EFI window in the kernel's tables: the runtime regions placed
//! top-down from -4 GiB (handoff's decisions), mapped per descriptor for
//! SetVirtualAddressMap, then remapped with the memory attributes table's
//! permissions, kept in the plan, and unmapped again if anything fails.

use handoff::efi::{AttributesTable, RuntimeRegions, Window};
use handoff::paging::{UnmapError, WxSummary};
use handoff::plan;
use log::{info, warn};
use x86_64::PhysAddr;

use super::Unavailable;
use crate::cpu::tlb;
use crate::kspace::KernelSpace;

/// The runtime regions and their window addresses.
pub static RUNTIME: spin::Mutex<RuntimeRegions> = spin::Mutex::new(RuntimeRegions::new());
/// The window's mappings as they are in the kernel's tables.
static WINDOW: spin::Mutex<Window> = spin::Mutex::new(Window::new());
/// The window with the attributes table's permissions, made before
/// SetVirtualAddressMap and mapped after it.
static REFINED: spin::Mutex<Window> = spin::Mutex::new(Window::new());

/// Makes the window per descriptor and, when the firmware has an
/// attributes table, the refined window it becomes after
/// SetVirtualAddressMap (as Linux's efi_runtime_update_mappings does):
/// computed now, so that a table baton cannot use is known before the
/// firmware is committed to virtual mode.
pub fn make(
    kernel: &KernelSpace,
    runtime: &RuntimeRegions,
    table: Option<&AttributesTable<'_>>,
) -> Result<(), Unavailable> {
    let (pat, mtrrs, cpu) = (kernel.pat(), kernel.mtrrs(), kernel.cpu());
    WINDOW
        .lock()
        .make(runtime, None, pat, mtrrs, cpu.nx, cpu.global)?;
    if let Some(table) = table {
        REFINED
            .lock()
            .make(runtime, Some(table), pat, mtrrs, cpu.nx, cpu.global)?;
    }
    for r in runtime.regions() {
        info!(
            "efi: runtime {:#012x}-{:#012x} {:?} {} -> {:#x}",
            r.phys,
            r.phys + r.len,
            r.ty,
            r.mem_type(),
            r.virt
        );
    }
    Ok(())
}

/// Maps the window per descriptor into the kernel's tables and adds it to
/// the plan.
pub fn map(kernel: &KernelSpace) -> Result<(), Unavailable> {
    let window = WINDOW.lock();
    map_mappings(kernel, &window)?;
    kernel.plan().add_efi_window(&window)?;
    info!(
        "efi: window: {} mappings, permissions per descriptor",
        window.mappings().len()
    );
    Ok(())
}

fn map_mappings(kernel: &KernelSpace, window: &Window) -> Result<(), Unavailable> {
    let mut early = kernel.early_frames();
    let frames = early.as_mut().ok_or(Unavailable::NoFrames)?;
    kernel.map(frames, window.mappings().iter().map(|m| &m.mapping))?;
    Ok(())
}

/// Unmaps every mapping of `window` from the kernel's tables (the caller
/// flushes the TLB), going on past failures; returns the first. Emptied
/// tables stay with the early frames (no allocator yet).
fn unmap_mappings(kernel: &KernelSpace, window: &Window) -> Result<(), UnmapError> {
    let mut first = Ok(());
    for m in window.mappings() {
        let done = kernel.unmap(m.mapping.virt, m.mapping.len, |_| {}, |_, _| {});
        if let (Err(e), Ok(())) = (done, &first) {
            first = Err(e);
        }
    }
    first
}

/// Unmaps whatever of the window is mapped and drops it from the plan.
pub fn unmap(kernel: &KernelSpace) {
    let window = WINDOW.lock();
    if window.mappings().is_empty() {
        return;
    }
    if let Err(e) = unmap_mappings(kernel, &window) {
        warn!("efi: unmapping the window: {e}");
    }
    // The window's entries are global: a CR3 reload would keep them.
    tlb::flush_all();
    kernel.plan().remove_efi_window();
}

/// Replaces the live window's mappings (per descriptor) by the refined
/// ones (with the attributes table's `RO` and `XP`), in the tables and in
/// the plan. Nothing runs in the window meanwhile: the firmware is only
/// called after.
pub fn refine(kernel: &KernelSpace) -> Result<(), Unavailable> {
    let mut window = WINDOW.lock();
    unmap_mappings(kernel, &window).map_err(Unavailable::Refine)?;
    // From here on, a failure leaves the window to `unmap`, which unmaps
    // whatever `window` holds.
    window.clone_from(&REFINED.lock());
    map_mappings(kernel, &window)?;
    // The old entries are global: a CR3 reload would keep them.
    tlb::flush_all();
    let mut plan = kernel.plan();
    plan.remove_efi_window();
    plan.add_efi_window(&window)?;
    info!(
        "efi: window after SetVirtualAddressMap: {} mappings, permissions from the memory \
         attributes table",
        window.mappings().len()
    );
    Ok(())
}

/// Holds the live tables, now with the EFI window, to the plan and W^X.
pub fn verify(kernel: &KernelSpace) -> Result<(), Unavailable> {
    let verified: plan::Verified = kernel.verify().map_err(Unavailable::Verify)?;
    let window = kernel
        .layout()
        .region(handoff::layout::RegionKind::EfiRuntime);
    let leaves = kernel.walker().leaf_count_in(window.start, window.end);
    info!(
        "efi: live tables match the plan with the EFI window: {} leaves in all, \
         EFI window {leaves}",
        verified.leaves.total(),
    );
    let wx: WxSummary = kernel.check_wx(|range| warn!("{range}"));
    if wx.passed() {
        info!("{wx}");
        Ok(())
    } else {
        log::error!("{wx}");
        Err(Unavailable::WxFound(wx.pages))
    }
}

/// The physical address the window address `virt` maps, for tests.
pub fn window_phys(kernel: &KernelSpace, virt: u64) -> Option<PhysAddr> {
    kernel.translate(virt).map(|t| t.phys)
}
