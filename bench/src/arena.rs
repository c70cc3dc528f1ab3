//! One kind of fake physical memory for both contenders: a plain host
//! buffer of page tables, addressed as physical memory from [`PHYS_BASE`].
//!
//! baton's builder reaches it through [`PhysWindow`] and takes frames from
//! [`FrameSource`]; the `x86_64` crate's `OffsetPageTable` reaches the same
//! buffer at [`Window::phys_offset`] and takes frames from the same bump
//! allocator through `FrameAllocator`. Unlike `handoff::sim` it checks
//! nothing but bounds: it is there to be fast, and the benchmark verifies
//! the tables once instead.
//!
//! A reset hands every frame out again without touching the memory, so
//! iterations reuse the buffer (and its page faults are paid once).

use core::ptr::NonNull;
use std::alloc::{self, Layout};

use handoff::PAGE_SIZE;
use handoff::phys::{FrameSource, PhysWindow};
use x86_64::structures::paging::{FrameAllocator, PageTable, PhysFrame, Size4KiB};
use x86_64::{PhysAddr, VirtAddr};

/// The physical address of the arena's first frame: in low RAM, where a
/// kernel would take its first page tables. Only bounds depend on it.
pub const PHYS_BASE: u64 = 16 << 20;

/// A buffer of page tables and a bump allocator over it, as separate
/// fields so that a builder can borrow both.
#[derive(Debug)]
pub struct Arena {
    /// Reaches the frames by physical address.
    pub window: Window,
    /// Hands the frames out in ascending order.
    pub frames: Frames,
}

impl Arena {
    /// An arena of `frames` frames, all touched once so that the first
    /// measured iteration pays no page faults.
    ///
    /// # Panics
    ///
    /// If the host cannot allocate it, or places it below [`PHYS_BASE`]
    /// (the `x86_64` crate's offset must be a canonical address).
    pub fn new(frames: usize) -> Arena {
        let frames = frames.max(1);
        let layout = Layout::array::<PageTable>(frames).expect("arena size fits in memory");
        // SAFETY: the layout has a non-zero size (at least one table).
        let raw = unsafe { alloc::alloc(layout) };
        let base = NonNull::new(raw.cast::<PageTable>())
            .unwrap_or_else(|| alloc::handle_alloc_error(layout));
        // SAFETY: `base` points to `frames` tables just allocated; zero is a
        // valid `PageTable` (every entry unused).
        unsafe { base.as_ptr().write_bytes(0, frames) };
        // The `x86_64` crate turns `offset + phys` back into a pointer with
        // an integer cast: expose the buffer's provenance for that.
        let addr = base.as_ptr().expose_provenance() as u64;
        assert!(
            addr >= PHYS_BASE,
            "arena at host address {addr:#x} is below PHYS_BASE"
        );
        Arena {
            window: Window {
                base,
                len: frames,
                layout,
                phys_offset: addr - PHYS_BASE,
            },
            frames: Frames {
                capacity: frames as u64,
                next: 0,
            },
        }
    }

    /// The frames the arena holds.
    pub fn capacity(&self) -> u64 {
        self.frames.capacity
    }

    /// Takes every frame back; they keep their old content, as reused
    /// memory would.
    pub fn reset(&mut self) {
        self.frames.next = 0;
    }
}

/// The arena's memory, reached by physical frame.
#[derive(Debug)]
pub struct Window {
    base: NonNull<PageTable>,
    len: usize,
    layout: Layout,
    phys_offset: u64,
}

impl Window {
    /// The virtual address at which the host sees physical address 0: what
    /// `OffsetPageTable` is given.
    pub fn phys_offset(&self) -> VirtAddr {
        VirtAddr::new(self.phys_offset)
    }

    /// The table in `frame`, as a raw pointer.
    ///
    /// # Panics
    ///
    /// If `frame` is outside the arena.
    fn slot(&self, frame: PhysFrame) -> *mut PageTable {
        let addr = frame.start_address().as_u64();
        let index = addr.wrapping_sub(PHYS_BASE) / PAGE_SIZE;
        assert!(
            addr >= PHYS_BASE && index < self.len as u64,
            "frame {addr:#x} is outside the arena"
        );
        // SAFETY: `index` is below `len`, so the result stays inside the
        // allocation.
        unsafe { self.base.as_ptr().add(index as usize) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc` with exactly this layout, and no
        // reference into it outlives `self` (they all borrow it).
        unsafe { alloc::dealloc(self.base.as_ptr().cast(), self.layout) };
    }
}

// SAFETY: `slot` returns the memory of exactly `frame` (one table per frame,
// by address), and the returned reference borrows `self`, so nothing else
// reaches that memory through the window meanwhile.
unsafe impl PhysWindow for Window {
    fn table(&self, frame: PhysFrame) -> &PageTable {
        // SAFETY: the slot is inside the allocation, initialised (zeroed at
        // creation, written only as tables since), and borrowed shared.
        unsafe { &*self.slot(frame) }
    }

    fn table_mut(&mut self, frame: PhysFrame) -> &mut PageTable {
        // SAFETY: as for `table`, and `&mut self` makes the borrow unique.
        unsafe { &mut *self.slot(frame) }
    }
}

/// A bump allocator over the arena's frames.
#[derive(Debug)]
pub struct Frames {
    capacity: u64,
    next: u64,
}

impl Frames {
    /// The frames handed out since the last reset.
    pub fn used(&self) -> u64 {
        self.next
    }

    fn next_frame(&mut self) -> Option<PhysFrame> {
        if self.next == self.capacity {
            return None;
        }
        let addr = PHYS_BASE + self.next * PAGE_SIZE;
        self.next += 1;
        Some(PhysFrame::containing_address(PhysAddr::new(addr)))
    }
}

// SAFETY: frames are handed out in ascending order, each once per reset,
// from the range the arena's `Window` reaches; a reset means the caller has
// dropped the tables built before it.
unsafe impl FrameSource for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        self.next_frame()
    }
}

// SAFETY: as for `FrameSource`: unused frames, each handed out once, which
// the `Window` (and so `Window::phys_offset`) reaches.
unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_frames_in_order_and_reaches_them() {
        let mut arena = Arena::new(2);
        let a = FrameSource::allocate_frame(&mut arena.frames).unwrap();
        let b = FrameAllocator::<Size4KiB>::allocate_frame(&mut arena.frames).unwrap();
        assert_eq!(a.start_address().as_u64(), PHYS_BASE);
        assert_eq!(b.start_address().as_u64(), PHYS_BASE + PAGE_SIZE);
        assert_eq!(FrameSource::allocate_frame(&mut arena.frames), None);
        arena.window.table_mut(b)[3].set_addr(
            PhysAddr::new(0x5000),
            x86_64::structures::paging::PageTableFlags::PRESENT,
        );
        // The x86_64 crate's view of the same frame: offset + phys.
        let via_offset = arena.window.phys_offset() + b.start_address().as_u64();
        assert_eq!(via_offset.as_ptr::<PageTable>(), arena.window.slot(b));
        assert_eq!(arena.window.table(b)[3].addr(), PhysAddr::new(0x5000));
        arena.reset();
        assert_eq!(arena.frames.used(), 0);
        assert_eq!(FrameSource::allocate_frame(&mut arena.frames), Some(a));
    }

    #[test]
    #[should_panic(expected = "outside the arena")]
    fn frames_outside_the_arena_panic() {
        let arena = Arena::new(1);
        let _ = arena
            .window
            .table(PhysFrame::containing_address(PhysAddr::new(
                PHYS_BASE + PAGE_SIZE,
            )));
    }
}
