//! The EFI window, in the EFI address space only: the runtime regions
//! placed top-down from -4 GiB (handoff's decisions), mapped per
//! descriptor for SetVirtualAddressMap, then remapped with finer
//! permissions (the memory attributes table's, or the runtime images'
//! sections'), verified against the kernel's plan with the window added,
//! and unmapped again if anything fails. Its entries are not global, so
//! none of them outlives a runtime call in a TLB.

use core::sync::atomic::{AtomicU64, Ordering};
use handoff::efi::{Refine, RuntimeRegions, Window};
use handoff::paging::{UnmapError, WxSummary};
use handoff::plan;
use log::{debug, info, warn};

use x86_64::PhysAddr;

use super::Unavailable;
use crate::kspace::{AddressSpace, KernelSpace};

/// The runtime regions and their window addresses.
pub static RUNTIME: spin::Mutex<RuntimeRegions> = spin::Mutex::new(RuntimeRegions::new());
/// The window's mappings as they are in the kernel's tables.
static WINDOW: spin::Mutex<Window> = spin::Mutex::new(Window::new());
/// The window with the attributes table's permissions, made before
/// SetVirtualAddressMap and mapped after it.
static REFINED: spin::Mutex<Window> = spin::Mutex::new(Window::new());

/// The window as the runtime images' sections would make it, to check the
/// attributes table against.
static FROM_IMAGES: spin::Mutex<Window> = spin::Mutex::new(Window::new());

/// Pages on which the images' sections and the attributes table disagree
/// about execution (`u64::MAX`: not compared).
static DISAGREEING: AtomicU64 = AtomicU64::new(u64::MAX);

/// How many pages the images' sections and the attributes table disagree
/// on, if both were there to compare.
pub fn disagreeing_pages() -> Option<u64> {
    Some(DISAGREEING.load(Ordering::SeqCst)).filter(|&n| n != u64::MAX)
}

/// Compares the refined window (made from the attributes table) with the
/// one the runtime images' sections give, page by page: code in one must
/// be code in the other. Logs the result and records it for the
/// self-tests.
pub fn compare_with_images(
    kernel: &KernelSpace,
    runtime: &RuntimeRegions,
    images: &dyn Refine,
) -> Result<(), Unavailable> {
    let (pat, mtrrs, nx) = (kernel.pat(), kernel.mtrrs(), kernel.cpu().nx);
    let mut from_images = FROM_IMAGES.lock();
    from_images.make(runtime, Some(images), pat, mtrrs, nx, false)?;
    let refined = REFINED.lock();
    let mut pages = 0;
    for (n, (virt, len)) in refined.exec_disagreements(&from_images).enumerate() {
        if n < 16 {
            warn!(
                "efi: {:#x}-{:#x}: the attributes table and the PE sections disagree on execution",
                virt,
                virt + len
            );
        }
        pages += len / 4096;
    }
    DISAGREEING.store(pages, Ordering::SeqCst);
    if pages == 0 {
        debug!(
            "efi: the runtime images' PE sections agree with the attributes table on every code page"
        );
    } else {
        warn!(
            "efi: the runtime images' PE sections and the attributes table disagree on {pages} pages"
        );
    }
    Ok(())
}

/// Makes the window per descriptor and, when there is a finer source of
/// permissions (the attributes table, or the runtime images' sections),
/// the refined window it becomes after SetVirtualAddressMap (as Linux's
/// efi_runtime_update_mappings does): computed now, so that a source
/// baton cannot use is known before the firmware is committed to virtual
/// mode.
pub fn make(
    kernel: &KernelSpace,
    runtime: &RuntimeRegions,
    refine: Option<&dyn Refine>,
) -> Result<(), Unavailable> {
    let (pat, mtrrs, nx) = (kernel.pat(), kernel.mtrrs(), kernel.cpu().nx);
    WINDOW.lock().make(runtime, None, pat, mtrrs, nx, false)?;
    if let Some(refine) = refine {
        REFINED
            .lock()
            .make(runtime, Some(refine), pat, mtrrs, nx, false)?;
    }
    for r in runtime.regions() {
        debug!(
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

/// Maps the window per descriptor into the EFI address space.
pub fn map(kernel: &KernelSpace, space: &AddressSpace) -> Result<(), Unavailable> {
    let window = WINDOW.lock();
    map_mappings(kernel, space, &window)?;
    debug!(
        "efi: window: {} mappings, permissions per descriptor, in the EFI address space only",
        window.mappings().len()
    );
    Ok(())
}

fn map_mappings(
    kernel: &KernelSpace,
    space: &AddressSpace,
    window: &Window,
) -> Result<(), Unavailable> {
    let mut early = kernel.early_frames();
    let frames = early.as_mut().ok_or(Unavailable::NoFrames)?;
    space.map(frames, window.mappings().iter().map(|m| &m.mapping))?;
    Ok(())
}

/// Unmaps every mapping of `window` from `space` (nothing of it is in a
/// TLB: the space is live only during calls, and the window is not
/// global), going on past failures; returns the first. Emptied tables
/// stay with the early frames.
fn unmap_mappings(space: &AddressSpace, window: &Window) -> Result<(), UnmapError> {
    let mut first = Ok(());
    for m in window.mappings() {
        let done = space.unmap(m.mapping.virt, m.mapping.len, |_| {}, |_, _| {});
        if let (Err(e), Ok(())) = (done, &first) {
            first = Err(e);
        }
    }
    first
}

/// Unmaps whatever of the window is mapped.
pub fn unmap(space: &AddressSpace) {
    let window = WINDOW.lock();
    if let Err(e) = unmap_mappings(space, &window) {
        warn!("efi: unmapping the window: {e}");
    }
}

/// Replaces the window's mappings (per descriptor) by the refined ones,
/// in the EFI address space. Nothing runs in the window meanwhile: the
/// firmware is only called after.
pub fn refine(kernel: &KernelSpace, space: &AddressSpace, source: &str) -> Result<(), Unavailable> {
    let mut window = WINDOW.lock();
    unmap_mappings(space, &window).map_err(Unavailable::Refine)?;
    // From here on, a failure leaves the window to `unmap`, which unmaps
    // whatever `window` holds.
    window.clone_from(&REFINED.lock());
    map_mappings(kernel, space, &window)?;
    debug!(
        "efi: window after SetVirtualAddressMap: {} mappings, permissions from {source}",
        window.mappings().len()
    );
    Ok(())
}

/// Holds the EFI address space to the kernel's plan with the window added
/// (and W^X), and the kernel's own tables to the plan without it: the
/// window is mapped in the EFI space only.
pub fn verify(kernel: &KernelSpace, space: &AddressSpace) -> Result<(), Unavailable> {
    let window = WINDOW.lock();
    let verified: plan::Verified = {
        let mut plan = kernel.plan();
        plan.add_efi_window(&window)?;
        let result = plan::verify(&plan, &space.walker(), &kernel.inputs());
        plan.remove_efi_window();
        result.map_err(Unavailable::Verify)?
    };
    kernel.verify().map_err(Unavailable::Verify)?;
    let region = kernel
        .layout()
        .region(handoff::layout::RegionKind::EfiRuntime);
    let (ours, theirs) = (
        space.walker().leaf_count_in(region.start, region.end),
        kernel.walker().leaf_count_in(region.start, region.end),
    );
    debug!(
        "efi: the EFI address space matches the plan with the window: {} leaves, {} in the \
         window; the kernel's tables: {} there",
        verified.leaves.total(),
        ours.total(),
        theirs.total(),
    );
    let wx: WxSummary = space.check_wx(|range| warn!("{range}"));
    if wx.passed() {
        info!("efi: EFI address space: {wx}");
        Ok(())
    } else {
        log::error!("efi: EFI address space: {wx}");
        Err(Unavailable::WxFound(wx.pages))
    }
}

/// Unmaps the leaf holding `virt` from the window (`inject=efi-fault`):
/// the firmware faults when it gets there.
pub fn unmap_leaf(space: &AddressSpace, virt: u64) {
    let Some(t) = space.translate(virt) else {
        return warn!("inject: {virt:#x} is not mapped in the EFI address space; nothing done");
    };
    let (start, len) = (t.leaf.virt, t.leaf.size.bytes());
    match space.unmap(start, len, |_| {}, |_, _| {}) {
        Ok(_) => warn!(
            "inject: window {start:#x}-{:#x} (holding {virt:#x}) unmapped in the EFI address space",
            start + len
        ),
        Err(e) => warn!("inject: window {start:#x} not unmapped ({e}); nothing done"),
    }
}

/// The physical address `virt` maps in `space`, for tests.
pub fn window_phys(space: &AddressSpace, virt: u64) -> Option<PhysAddr> {
    space.translate(virt).map(|t| t.phys)
}
