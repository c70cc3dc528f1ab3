//! Where the descriptors live: the vmemmap, one [`FrameDesc`] per 4 KiB
//! frame at `vmemmap_base + pfn * DESC_SIZE`, backed by real frames only
//! where RAM is (Linux's sparse vmemmap).
//!
//! The allocator keeps its state in the descriptors, so the vmemmap's own
//! backing must come from somewhere else first. The kernel bootstraps it
//! after the CR3 switch with the bump allocator that built its first page
//! tables (taking frames from the top of the largest usable region):
//!
//! 1. [`backing_pages`] says how many frames the vmemmap needs; the kernel
//!    takes them as one contiguous chunk from the bump allocator;
//! 2. [`backing_mappings`] lays the chunk under the vmemmap: the kernel
//!    maps each [`Mapping`] with
//!    [`Builder::on_root`](crate::paging::Builder::on_root), page tables
//!    from the same bump allocator (no need to zero the chunk:
//!    initialisation writes every descriptor of RAM, and no other is read);
//! 3. [`FrameAllocator::init`](super::FrameAllocator::init) gets the bump
//!    allocator's whole range (first page tables, vmemmap chunk, vmemmap
//!    page tables) as [`Exclusion`](super::Exclusion)s, so the allocator
//!    never hands those frames out.
//!
//! [`FrameDesc`]: super::FrameDesc

use core::iter::Peekable;
use core::ops::Range;

use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

use super::desc::DESC_SIZE;
use crate::PAGE_SIZE;
use crate::layout::{LAYOUT_4, LAYOUT_5, Layout, RegionKind};
use crate::memmap::{MemoryMap, RamRuns};
use crate::paging::{Mapping, PHYS_LIMIT, PageSize};

// The vmemmap has a descriptor for every frame the physmap can reach.
const _: () = assert!(
    LAYOUT_4.region(RegionKind::Vmemmap).size() / DESC_SIZE * PAGE_SIZE >= LAYOUT_4.physmap_size()
);
const _: () =
    assert!(LAYOUT_5.region(RegionKind::Vmemmap).size() / DESC_SIZE * PAGE_SIZE >= PHYS_LIMIT);

/// The address of `pfn`'s descriptor in the vmemmap of `layout`.
pub const fn desc_addr(layout: &Layout, pfn: u64) -> u64 {
    layout.vmemmap_base() + pfn * DESC_SIZE
}

/// The stretches of the vmemmap that hold descriptors of RAM below `limit`
/// (the physmap's size, as for
/// [`FrameAllocator::init`](super::FrameAllocator::init)): page-aligned
/// virtual ranges, ascending, disjoint, merged where they touch.
pub fn backing<'a>(map: &'a MemoryMap, layout: &'a Layout, limit: u64) -> Backing<'a> {
    Backing {
        runs: map.ram_runs().peekable(),
        layout,
        limit,
    }
}

/// The frames the vmemmap needs for RAM below `limit`.
pub fn backing_pages(map: &MemoryMap, layout: &Layout, limit: u64) -> u64 {
    backing(map, layout, limit)
        .map(|r| (r.end - r.start) / PAGE_SIZE)
        .sum()
}

/// The mappings that back the vmemmap with the contiguous chunk of
/// [`backing_pages`] frames at `chunk`, in order: each stretch of
/// [`backing`] takes the next part of the chunk. `flags` are the leaf
/// flags (`WRITABLE | GLOBAL`, with `NO_EXECUTE` where the CPU has NX);
/// 2 MiB pages are allowed where the addresses line up.
pub fn backing_mappings<'a>(
    map: &'a MemoryMap,
    layout: &'a Layout,
    limit: u64,
    chunk: PhysAddr,
    flags: PageTableFlags,
) -> impl Iterator<Item = Mapping> + 'a {
    let mut phys = chunk;
    backing(map, layout, limit).map(move |r| {
        let len = r.end - r.start;
        let mapping = Mapping {
            virt: r.start,
            phys,
            len,
            flags,
            max_page: PageSize::Size2M,
        };
        phys += len;
        mapping
    })
}

/// The iterator of [`backing`].
#[derive(Debug, Clone)]
pub struct Backing<'a> {
    runs: Peekable<RamRuns<'a>>,
    layout: &'a Layout,
    limit: u64,
}

impl Backing<'_> {
    /// The vmemmap pages holding the descriptors of the next RAM run below
    /// the limit.
    fn next_run(&mut self) -> Option<Range<u64>> {
        let run = self.runs.next()?;
        let (start, end) = (run.start / PAGE_SIZE, run.end.min(self.limit) / PAGE_SIZE);
        if start >= end {
            // Sorted runs: every later one lies beyond the limit too.
            return None;
        }
        let first = desc_addr(self.layout, start) / PAGE_SIZE * PAGE_SIZE;
        let last = desc_addr(self.layout, end).next_multiple_of(PAGE_SIZE);
        Some(first..last)
    }
}

impl Iterator for Backing<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        let mut range = self.next_run()?;
        // Merge the following runs whose pages touch or share one.
        while let Some(next) = self.runs.peek()
            && desc_addr(self.layout, next.start / PAGE_SIZE) / PAGE_SIZE * PAGE_SIZE <= range.end
            && next.start < self.limit
        {
            let more = self.next_run().expect("peeked a run below the limit");
            range.end = range.end.max(more.end);
        }
        Some(range)
    }
}
