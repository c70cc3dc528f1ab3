//! The kernel's implementations of handoff's physical-memory seam: a
//! direct map (Limine's HHDM before the switch, baton's physmap after) and
//! the early frame source that feeds the page-table builder.

use handoff::PAGE_SIZE;
use handoff::memmap::{Kind, MemoryMap};
use handoff::phys::{FrameSource, PhysWindow};
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTable, PhysFrame};

/// Physical memory seen through a direct map at `offset`.
#[derive(Debug)]
pub struct DirectMap {
    offset: u64,
}

impl DirectMap {
    /// A window through the direct map at `offset`.
    ///
    /// # Safety
    ///
    /// Every frame later passed to the window must be mapped, readable and
    /// (for `table_mut`) writable at `offset + address` in the page tables
    /// live while the window is used, and hold a page table nothing else
    /// writes concurrently (only the CPU's accessed/dirty bits).
    pub unsafe fn new(offset: u64) -> Self {
        Self { offset }
    }

    fn ptr(&self, frame: PhysFrame) -> *mut PageTable {
        (self.offset + frame.start_address().as_u64()) as *mut PageTable
    }
}

// SAFETY: `DirectMap::new`'s contract puts every frame used at exactly
// `offset + address`, which is the memory of that frame.
unsafe impl PhysWindow for DirectMap {
    fn table(&self, frame: PhysFrame) -> &PageTable {
        // SAFETY: mapped and readable by `new`'s contract; page-aligned, so
        // aligned for `PageTable`.
        unsafe { &*self.ptr(frame) }
    }

    fn table_mut(&mut self, frame: PhysFrame) -> &mut PageTable {
        // SAFETY: mapped and writable by `new`'s contract; `&mut self`
        // keeps this the only reference the window hands out.
        unsafe { &mut *self.ptr(frame) }
    }
}

/// Frames for baton's first page tables, taken downward from the top of the
/// largest usable region (below `limit`, which the HHDM and the physmap both
/// cover). Everything handed out stays in `start..end`, which the kernel
/// reports and keeps away from later allocators.
#[derive(Debug)]
pub struct EarlyFrames {
    floor: u64,
    next: u64,
    end: u64,
}

impl EarlyFrames {
    /// A source over the largest usable region of `map` below `limit`.
    pub fn new(map: &MemoryMap, limit: u64) -> Option<Self> {
        let region = map
            .regions()
            .iter()
            .filter(|r| r.kind == Kind::Usable && r.start < limit)
            .max_by_key(|r| r.end.min(limit) - r.start)?;
        let end = region.end.min(limit) & !(PAGE_SIZE - 1);
        Some(Self {
            floor: region.start,
            next: end,
            end,
        })
    }

    /// The physical range handed out so far.
    pub fn used(&self) -> core::ops::Range<u64> {
        self.next..self.end
    }
}

// SAFETY: frames come from one usable region of the normalised map (free
// memory no one else owns: the kernel has no allocator yet), downward and
// never twice; usable memory lies in both Limine's HHDM and the physmap.
unsafe impl FrameSource for EarlyFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        if self.next - self.floor < PAGE_SIZE {
            return None;
        }
        self.next -= PAGE_SIZE;
        Some(PhysFrame::containing_address(PhysAddr::new(self.next)))
    }
}
