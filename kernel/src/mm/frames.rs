//! The frame allocator's descriptors in the vmemmap, and the frame source
//! page tables take their frames from after boot.

use core::sync::atomic::{AtomicU64, Ordering};

use handoff::frames::{Descriptors, FrameAllocator, FrameDesc};
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
