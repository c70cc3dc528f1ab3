//! The frame allocator's descriptors in the vmemmap, backed as the
//! allocator writes them, and the frame source page tables take their
//! frames from after boot.

use core::ops::Range;

use handoff::PAGE_SIZE;
use handoff::frames::{
    AllocError, DESC_SIZE, Descriptors, FrameAllocator, FrameDesc, GIB_RECORD_SIZE, GibRecord,
    MAX_ORDER, NoBacking, Reason, vmemmap,
};
use handoff::paging::{Mapping, PageSize};
use handoff::phys::FrameSource;
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use crate::kspace::{self, OwnedRegion};

/// The frames the vmemmap keeps in reserve once the allocator runs: an
/// allocation backs at most 13 pages and their tables (one per half it
/// splits off, 8 MiB of vmemmap apart), and topping the reserve up after
/// it may split a block the same way.
pub const RESERVE: usize = 64;

/// Frames for vmemmap pages and their page tables: a contiguous window
/// the bump allocator gave before the allocator existed, then single
/// frames the allocator gives. All reserved for the vmemmap.
#[derive(Debug)]
struct Reserve {
    window: Range<u64>,
    /// Where the window started and ended when it was set up: what lies
    /// between its end now and its first end was freed as surplus.
    window_start: u64,
    window_end: u64,
    spare: [u64; RESERVE],
    len: usize,
    /// Frames taken for page tables.
    tables: u64,
}

impl Reserve {
    const fn frames(&self) -> u64 {
        (self.window.end - self.window.start) / PAGE_SIZE + self.len as u64
    }

    fn take(&mut self) -> Option<PhysFrame> {
        let phys = if self.len > 0 {
            self.len -= 1;
            self.spare[self.len]
        } else if self.window.start < self.window.end {
            self.window.start += PAGE_SIZE;
            self.window.start - PAGE_SIZE
        } else {
            return None;
        };
        Some(PhysFrame::containing_address(PhysAddr::new(phys)))
    }
}

// SAFETY: the reserve holds frames reserved for the vmemmap, each handed
// out once (taken off the reserve), RAM below the physmap's limit, so
// reachable through the window the vmemmap's tables are written with.
unsafe impl FrameSource for Reserve {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        let frame = self.take()?;
        self.tables += 1;
        Some(frame)
    }
}

/// The descriptors, at `vmemmap_base + pfn * 32`, the GiB records after
/// them, and what backs them.
#[derive(Debug)]
pub struct Vmemmap {
    /// `vmemmap_base`, once the vmemmap is set up.
    base: u64,
    /// Where the GiB records start.
    gibs: u64,
    region: Option<OwnedRegion>,
    flags: PageTableFlags,
    reserve: Reserve,
    /// 4 KiB pages backed on demand, and 2 MiB pages backed before the
    /// allocator started.
    pages: u64,
    large_pages: u64,
}

/// What backs the vmemmap.
#[derive(Debug, Clone)]
pub struct Backing {
    pub pages: u64,
    pub large_pages: u64,
    pub tables: u64,
    pub reserve: u64,
    /// The frames of the reserve taken before the allocator started.
    pub first: u64,
    /// The part of it freed as surplus (physical).
    pub freed: Range<u64>,
}

impl Vmemmap {
    const fn new() -> Self {
        Self {
            base: 0,
            gibs: 0,
            region: None,
            flags: PageTableFlags::empty(),
            reserve: Reserve {
                window: 0..0,
                window_start: 0,
                window_end: 0,
                spare: [0; RESERVE],
                len: 0,
                tables: 0,
            },
            pages: 0,
            large_pages: 0,
        }
    }

    /// Sets the vmemmap up at `base`, the GiB records at `gibs`, their
    /// tables in `region`, mapped with `flags`; `reserve` (physical) backs
    /// what initialisation writes, and `large_pages` 2 MiB pages were
    /// mapped already.
    pub fn set_up(
        &mut self,
        (base, gibs): (u64, u64),
        region: OwnedRegion,
        flags: PageTableFlags,
        reserve: Range<u64>,
        large_pages: u64,
    ) {
        self.base = base;
        self.gibs = gibs;
        self.region = Some(region);
        self.flags = flags;
        (self.reserve.window_start, self.reserve.window_end) = (reserve.start, reserve.end);
        self.reserve.window = reserve;
        self.large_pages = large_pages;
    }

    /// What backs the vmemmap now.
    pub fn backing(&self) -> Backing {
        Backing {
            pages: self.pages,
            large_pages: self.large_pages,
            tables: self.reserve.tables,
            reserve: self.reserve.frames(),
            first: (self.reserve.window_end - self.reserve.window_start) / PAGE_SIZE,
            freed: self.reserve.window.end..self.reserve.window_end,
        }
    }

    fn ptr(&self, pfn: u64) -> *mut FrameDesc {
        assert!(self.base != 0, "the vmemmap is not set up yet");
        (self.base + pfn * DESC_SIZE) as *mut FrameDesc
    }

    fn gib_ptr(&self, gib: u64) -> *mut GibRecord {
        assert!(self.gibs != 0, "the vmemmap is not set up yet");
        (self.gibs + gib * GIB_RECORD_SIZE) as *mut GibRecord
    }

    /// Backs the vmemmap page at `va` with a zeroed frame of the reserve.
    fn back_page(&mut self, va: u64, pfn: u64) -> Result<(), NoBacking> {
        let region = self.region.as_mut().expect("set up");
        if region.is_mapped(va) {
            return Ok(());
        }
        // The page and a table per level below the region's: mapping
        // cannot run short half-way.
        if self.reserve.frames() < 4 {
            return Err(NoBacking { pfn });
        }
        let frame = self.reserve.take().ok_or(NoBacking { pfn })?;
        let kernel = kspace::get();
        let Some(virt) = kernel.phys_to_virt(frame.start_address(), PAGE_SIZE) else {
            panic!("a vmemmap frame outside the physmap: {frame:?}");
        };
        // SAFETY: the frame was just taken off the reserve (RAM reserved
        // for the vmemmap, nothing else uses it) and the physmap maps it
        // read-write at `virt`.
        unsafe { core::ptr::write_bytes(virt as *mut u8, 0, PAGE_SIZE as usize) };
        let mapping = Mapping {
            virt: va,
            phys: frame.start_address(),
            len: PAGE_SIZE,
            flags: self.flags,
            max_page: PageSize::Size4K,
        };
        if let Err(e) = region.map(&mut self.reserve, &mapping) {
            // Unmapped, in the region, with frames enough: a bug.
            panic!("mapping the vmemmap page {va:#x}: {e}");
        }
        self.pages += 1;
        Ok(())
    }
}

impl Descriptors for Vmemmap {
    fn desc(&self, pfn: u64) -> &FrameDesc {
        // SAFETY: the allocator reads only descriptors it backed (mapped
        // read-write and never unmapped); each PFN has its own 32-byte,
        // aligned slot.
        unsafe { &*self.ptr(pfn) }
    }

    fn desc_mut(&mut self, pfn: u64) -> &mut FrameDesc {
        // SAFETY: as in `desc`; `&mut self` (the allocator's lock) makes
        // this the only reference.
        unsafe { &mut *self.ptr(pfn) }
    }

    fn back(&mut self, pfns: Range<u64>) -> Result<(), NoBacking> {
        let layout = kspace::get().layout();
        let pages = vmemmap::pages(layout, &pfns);
        for va in pages.step_by(PAGE_SIZE as usize) {
            let first = (va - self.base) / DESC_SIZE;
            self.back_page(va, first.max(pfns.start))?;
        }
        Ok(())
    }

    fn gib(&self, gib: u64) -> &GibRecord {
        // SAFETY: as for descriptors: the allocator reads only records it
        // backed; each GiB has its own 16-byte, aligned slot.
        unsafe { &*self.gib_ptr(gib) }
    }

    fn gib_mut(&mut self, gib: u64) -> &mut GibRecord {
        // SAFETY: as in `gib`; `&mut self` makes this the only reference.
        unsafe { &mut *self.gib_ptr(gib) }
    }

    fn back_gibs(&mut self, gibs: Range<u64>) -> Result<(), NoBacking> {
        let pages = vmemmap::gib_pages(kspace::get().layout(), &gibs);
        for va in pages.step_by(PAGE_SIZE as usize) {
            self.back_page(va, gibs.start << MAX_ORDER)?;
        }
        Ok(())
    }

    fn wants(&self) -> u64 {
        (RESERVE as u64).saturating_sub(self.reserve.frames())
    }

    fn give(&mut self, frame: PhysFrame) {
        let r = &mut self.reserve;
        // `wants` asked only for what fits.
        r.spare[r.len] = frame.start_address().as_u64();
        r.len += 1;
    }

    fn surplus(&mut self) -> Option<Range<u64>> {
        let r = &mut self.reserve;
        let window = (r.window.end - r.window.start) / PAGE_SIZE;
        let excess = r.frames().saturating_sub(RESERVE as u64).min(window);
        if excess == 0 {
            return None;
        }
        let end = r.window.end;
        r.window.end -= excess * PAGE_SIZE;
        Some(r.window.end / PAGE_SIZE..end / PAGE_SIZE)
    }
}

/// The frame allocator.
pub static FRAMES: spin::Mutex<FrameAllocator<Vmemmap>> =
    spin::Mutex::new(FrameAllocator::new(Vmemmap::new()));

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
