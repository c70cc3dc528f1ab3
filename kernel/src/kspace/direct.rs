//! The kernel's implementations of handoff's physical-memory seam: a
//! direct map (Limine's HHDM before the switch, baton's physmap after) and
//! the early frame source that feeds the page-table builder until the
//! frame allocator runs.

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
    /// A second window over the same direct map, for the owner of the
    /// address space that vouched for the first.
    ///
    /// # Safety
    ///
    /// `new`'s contract holds for both windows together: the caller keeps
    /// every write through either of them to tables that no other window
    /// writes at the same time (an address space writes only under its
    /// writer's lock, a region owner only into its own tables).
    pub(super) unsafe fn duplicate(&self) -> Self {
        Self {
            offset: self.offset,
        }
    }

    /// The direct map's base: physical address 0 is mapped there.
    pub fn offset(&self) -> u64 {
        self.offset
    }
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
        // keeps this the only reference this window hands out, and
        // `duplicate`'s contract keeps other windows' writers off it.
        unsafe { &mut *self.ptr(frame) }
    }
}

/// Frames for baton's page tables before the frame allocator exists,
/// handed out downward by a bump allocator over one usable region at a
/// time, never given back. Everything it handed out stays in
/// [`used`](Self::used), which the kernel reports and keeps away from the
/// frame allocator.
///
/// Before the CR3 switch the tables are written through Limine's HHDM, so
/// the first region lies below 4 GiB: every base revision maps 0-4 GiB
/// there (and revision 3 and later all usable memory), but Limine 8.2 has
/// been seen leaving RAM above 4 GiB out of its HHDM. After the switch
/// everything is reached through baton's physmap, and
/// [`widen`](Self::widen) moves on to the largest usable region anywhere
/// (the vmemmap's backing can need far more than 4 GiB holds).
#[derive(Debug)]
pub struct EarlyFrames {
    /// `(floor, next, end)` of each region used; frames come from the last.
    spans: [(u64, u64, u64); 2],
    count: usize,
}

/// The largest usable range of `map` inside `[0, limit)` that avoids
/// `avoid`.
fn largest_usable(map: &MemoryMap, limit: u64, avoid: core::ops::Range<u64>) -> Option<(u64, u64)> {
    map.regions()
        .iter()
        .filter(|r| r.kind == Kind::Usable)
        .flat_map(|r| {
            let (start, end) = (r.start, r.end.min(limit) & !(PAGE_SIZE - 1));
            // The parts below and above `avoid`.
            [(start, end.min(avoid.start)), (start.max(avoid.end), end)]
        })
        .filter(|(start, end)| start < end)
        .max_by_key(|(start, end)| end - start)
}

impl EarlyFrames {
    /// A source over the largest usable region below `limit`.
    pub fn new(map: &MemoryMap, limit: u64) -> Option<Self> {
        let (floor, end) = largest_usable(map, limit, 0..0)?;
        Some(Self {
            spans: [(floor, end, end), (0, 0, 0)],
            count: 1,
        })
    }

    /// Moves on to the largest usable region below `limit` that the first
    /// one does not touch, if it is larger than what is left (only after
    /// the switch: it may lie outside Limine's HHDM).
    pub fn widen(&mut self, map: &MemoryMap, limit: u64) {
        if self.count == 2 {
            return;
        }
        let (floor, _, end) = self.spans[0];
        let left = self.spans[0].1 - floor;
        if let Some((f, e)) = largest_usable(map, limit, floor..end)
            && e - f > left
        {
            self.spans[1] = (f, e, e);
            self.count = 2;
        }
    }

    /// The physical ranges handed out so far.
    pub fn used(&self) -> impl Iterator<Item = core::ops::Range<u64>> + '_ {
        self.spans[..self.count]
            .iter()
            .map(|&(_, next, end)| next..end)
    }

    fn current(&mut self) -> &mut (u64, u64, u64) {
        &mut self.spans[self.count - 1]
    }

    /// `frames` contiguous frames at an address aligned to `align` frames
    /// (a power of two), skipping what lies between (it stays used).
    pub fn take_aligned(&mut self, frames: u64, align: u64) -> Option<PhysAddr> {
        let bytes = frames.checked_mul(PAGE_SIZE)?;
        let (floor, next, _) = self.current();
        let start = next.checked_sub(bytes)? & !(align * PAGE_SIZE - 1);
        if start < *floor {
            return None;
        }
        *next = start;
        Some(PhysAddr::new(start))
    }

    /// `frames` contiguous frames at once (for the vmemmap's reserve).
    pub fn take(&mut self, frames: u64) -> Option<PhysAddr> {
        let bytes = frames.checked_mul(PAGE_SIZE)?;
        let (floor, next, _) = self.current();
        if *next - *floor < bytes {
            return None;
        }
        *next -= bytes;
        Some(PhysAddr::new(*next))
    }
}

// SAFETY: frames come from usable regions of the normalised map (free
// memory no one else owns: the kernel has no allocator yet), downward and
// never twice; the first region lies where Limine's HHDM maps it, later
// ones are used only after the switch, through the physmap, which maps all
// usable memory below its limit.
unsafe impl FrameSource for EarlyFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        let (floor, next, _) = self.current();
        if *next - *floor < PAGE_SIZE {
            return None;
        }
        *next -= PAGE_SIZE;
        Some(PhysFrame::containing_address(PhysAddr::new(*next)))
    }
}
