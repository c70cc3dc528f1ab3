//! The frame allocator's descriptors in the vmemmap, and the frame source
//! page tables take their frames from after boot.

use core::sync::atomic::{AtomicU64, Ordering};

use handoff::frames::AllocError;
use handoff::frames::{Descriptors, FrameAllocator, FrameDesc, Reason};
use handoff::phys::FrameSource;
use x86_64::structures::paging::PhysFrame;

/// Where the vmemmap starts (`vmemmap_base`), once it is backed.
static VMEMMAP_BASE: AtomicU64 = AtomicU64::new(0);

/// The descriptors, one per RAM frame, at `vmemmap_base + pfn * 32`.
#[derive(Debug)]
pub struct Vmemmap;

impl Vmemmap {
    fn ptr(pfn: u64) -> *mut FrameDesc {
        let base = VMEMMAP_BASE.load(Ordering::Relaxed);
        assert!(base != 0, "the vmemmap is not backed yet");
        (base + pfn * handoff::frames::DESC_SIZE) as *mut FrameDesc
    }
}

/// Marks the vmemmap as backed at `base`: every RAM frame's descriptor
/// is mapped read-write there.
pub fn set_vmemmap_base(base: u64) {
    VMEMMAP_BASE.store(base, Ordering::Relaxed);
}

impl Descriptors for Vmemmap {
    fn desc(&self, pfn: u64) -> &FrameDesc {
        // SAFETY: the allocator asks only for descriptors of RAM frames,
        // all of which mm::init mapped in the vmemmap before setting the
        // base; each PFN has its own 32-byte, aligned slot.
        unsafe { &*Self::ptr(pfn) }
    }

    fn desc_mut(&mut self, pfn: u64) -> &mut FrameDesc {
        // SAFETY: as in `desc`; `&mut self` (the allocator's lock) makes
        // this the only reference.
        unsafe { &mut *Self::ptr(pfn) }
    }
}

/// The frame allocator.
pub static FRAMES: spin::Mutex<FrameAllocator<Vmemmap>> =
    spin::Mutex::new(FrameAllocator::new(Vmemmap));

/// Page-table frames from the frame allocator.
#[derive(Debug)]
pub struct TableFrames;

// SAFETY: the allocator hands out each free RAM frame once, below the
// physmap's limit (so reachable through the physmap window the builder
// uses), and frees them only when the unmapper gives them back.
unsafe impl FrameSource for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        FRAMES.lock().alloc(0).ok()
    }
}

/// The most early page tables recorded as given back.
pub const MAX_GIVEN_BACK: usize = 128;

/// Early page tables given back to the allocator once nothing used them
/// any more (the temporary address space of SetVirtualAddressMap),
/// recorded for the self-tests.
static GIVEN_BACK: spin::Mutex<([u64; MAX_GIVEN_BACK], usize)> =
    spin::Mutex::new(([0; MAX_GIVEN_BACK], 0));

/// Gives `tables`, early page tables nothing uses any more, to the
/// allocator, which holds them back as page tables until now. Returns how
/// many went back: all, or those before the first it refused (with why).
pub fn give_back_tables(tables: &[PhysFrame]) -> Result<usize, (usize, AllocError)> {
    let mut record = GIVEN_BACK.lock();
    let mut allocator = FRAMES.lock();
    for (i, &frame) in tables.iter().enumerate() {
        if let Err(e) = allocator.unreserve(frame, Reason::PageTables) {
            return Err((i, e));
        }
        if record.1 < MAX_GIVEN_BACK {
            let n = record.1;
            record.0[n] = frame.start_address().as_u64();
            record.1 += 1;
        }
    }
    Ok(tables.len())
}

/// Calls `visit` with every early page table given back so far.
pub fn given_back(mut visit: impl FnMut(PhysFrame)) {
    let record = GIVEN_BACK.lock();
    for &f in &record.0[..record.1] {
        visit(PhysFrame::containing_address(x86_64::PhysAddr::new(f)));
    }
}
