//! Where the descriptors live: the vmemmap, one [`FrameDesc`] per 4 KiB
//! frame at `vmemmap_base + pfn * DESC_SIZE`, backed by real frames only
//! where the allocator writes descriptors (Linux's sparse vmemmap, made
//! lazy).
//!
//! The allocator writes few descriptors (reserved frames, and the first
//! frame of each block below a GiB), so the kernel backs the vmemmap page
//! by page as [`Descriptors::back`](super::Descriptors::back) asks, each
//! page zeroed, with frames from a reserve the allocator keeps topped up.
//! After the descriptors of everything the physmap can reach come the
//! [`GibRecord`](super::GibRecord)s, 16 bytes per GiB, which hold the
//! free 1 GiB blocks: a 1 TiB machine's free memory costs 16 KiB of
//! records and a few pages of descriptors, not 8 GiB.
//!
//! The reserve has to exist before the allocator does. The kernel takes
//! it from the bump allocator that built its first page tables:
//!
//! 1. [`large_pages`] lists the 2 MiB stretches of the vmemmap that
//!    initialisation fills entirely (reserved RAM of 256 MiB or more); the
//!    kernel backs them with 2 MiB pages from the bump allocator, the
//!    largest pages that fit;
//! 2. [`init_frames`] bounds the frames initialisation backs the rest with
//!    (pages and page tables); the kernel takes that many as the reserve;
//! 3. [`FrameAllocator::init`](super::FrameAllocator::init) gets the bump
//!    allocator's whole range (first page tables, large pages, reserve) as
//!    [`Exclusion`](super::Exclusion)s, backs what it writes from the
//!    reserve, and frees what the reserve has left over.
//!
//! After that, an allocation writes at most [`MAX_ORDER`] + 1 descriptors,
//! one per split half, 8 MiB of vmemmap apart at most: 4 KiB pages are the
//! largest that fit.
//!
//! [`FrameDesc`]: super::FrameDesc
//! [`MAX_ORDER`]: super::MAX_ORDER

use core::ops::Range;

use super::buddy::MAX_ORDER;
use super::desc::{DESC_SIZE, GIB_RECORD_SIZE, Reason};
use crate::PAGE_SIZE;
use crate::layout::{LAYOUT_4, LAYOUT_5, Layout, RegionKind};
use crate::memmap::MemoryMap;
use crate::paging::PHYS_LIMIT;

/// The bytes of a large vmemmap page: the descriptors of 256 MiB.
pub const LARGE_PAGE: u64 = 2 << 20;

// The vmemmap has a descriptor for every frame the physmap can reach, and
// after them a record for every GiB of it.
const _: () = assert!(
    gibs_base(&LAYOUT_4) + LAYOUT_4.physmap_size() / GIB * GIB_RECORD_SIZE
        <= LAYOUT_4.region(RegionKind::Vmemmap).end
);
const _: () = assert!(
    gibs_base(&LAYOUT_5) + LAYOUT_5.physmap_size() / GIB * GIB_RECORD_SIZE
        <= LAYOUT_5.region(RegionKind::Vmemmap).end
);
const _: () = assert!(LAYOUT_5.physmap_size() >= PHYS_LIMIT);

/// The bytes of a GiB.
const GIB: u64 = 1 << 30;

/// The address of `pfn`'s descriptor in the vmemmap of `layout`.
pub const fn desc_addr(layout: &Layout, pfn: u64) -> u64 {
    layout.vmemmap_base() + pfn * DESC_SIZE
}

/// Where the GiB records start: right after the descriptors of every frame
/// the physmap can reach.
pub const fn gibs_base(layout: &Layout) -> u64 {
    layout.vmemmap_base() + layout.physmap_size() / PAGE_SIZE * DESC_SIZE
}

/// The address of the record of the GiB `gib` (its first PFN >>
/// [`MAX_ORDER`]).
pub const fn gib_addr(layout: &Layout, gib: u64) -> u64 {
    gibs_base(layout) + gib * GIB_RECORD_SIZE
}

/// The end of what the vmemmap holds for the physmap of `layout`: its
/// descriptors and GiB records.
pub const fn end(layout: &Layout) -> u64 {
    gib_addr(layout, layout.physmap_size() / GIB)
}

/// The pages (page-aligned virtual range) that hold the records of
/// `gibs`, which is not empty.
pub const fn gib_pages(layout: &Layout, gibs: &Range<u64>) -> Range<u64> {
    let first = gib_addr(layout, gibs.start) / PAGE_SIZE * PAGE_SIZE;
    let last = gib_addr(layout, gibs.end).next_multiple_of(PAGE_SIZE);
    first..last
}

/// The vmemmap pages (page-aligned virtual range) that hold the
/// descriptors of `pfns`, which is not empty.
pub const fn pages(layout: &Layout, pfns: &Range<u64>) -> Range<u64> {
    let first = desc_addr(layout, pfns.start) / PAGE_SIZE * PAGE_SIZE;
    let last = desc_addr(layout, pfns.end).next_multiple_of(PAGE_SIZE);
    first..last
}

/// The pages of [`pages`] in the largest sizes that fit: each 2 MiB-aligned
/// stretch wholly inside as one [`LARGE_PAGE`], the rest as 4 KiB pages,
/// in address order, as `(address, size)`.
pub fn page_sizes(range: Range<u64>) -> impl Iterator<Item = (u64, u64)> {
    let mut at = range.start;
    core::iter::from_fn(move || {
        if at >= range.end {
            return None;
        }
        let size = if at.is_multiple_of(LARGE_PAGE) && range.end - at >= LARGE_PAGE {
            LARGE_PAGE
        } else {
            PAGE_SIZE
        };
        let page = (at, size);
        at += size;
        Some(page)
    })
}

/// The 2 MiB stretches of the vmemmap (their addresses, ascending) that
/// initialisation fills entirely: every descriptor in them belongs to
/// reserved RAM below `limit` (256 MiB of it in a row, aligned).
pub fn large_pages<'a>(
    map: &'a MemoryMap,
    layout: &'a Layout,
    limit: u64,
) -> impl Iterator<Item = u64> + 'a {
    let limit_pfn = limit / PAGE_SIZE;
    reserved_runs(map, limit_pfn).flat_map(move |run| {
        let range = pages(layout, &run);
        // Only stretches whose every descriptor is in the run: the run's
        // first and last page may hold others' too.
        let inner = desc_addr(layout, run.start).next_multiple_of(PAGE_SIZE)
            ..desc_addr(layout, run.end) / PAGE_SIZE * PAGE_SIZE;
        page_sizes(range)
            .filter(move |&(va, size)| {
                size == LARGE_PAGE && va >= inner.start && va + size <= inner.end
            })
            .map(|(va, _)| va)
    })
}

/// The runs (PFNs) of touching reserved RAM regions below `limit_pfn`.
fn reserved_runs(map: &MemoryMap, limit_pfn: u64) -> impl Iterator<Item = Range<u64>> + '_ {
    let mut regions = map
        .regions()
        .iter()
        .filter(|r| r.kind.is_ram() && Reason::from_kind(r.kind).is_some())
        .map(move |r| r.start / PAGE_SIZE..(r.end / PAGE_SIZE).min(limit_pfn))
        .filter(|r| r.start < r.end)
        .peekable();
    core::iter::from_fn(move || {
        let mut run = regions.next()?;
        while let Some(next) = regions.next_if(|n| n.start == run.end) {
            run.end = next.end;
        }
        Some(run)
    })
}

/// How many vmemmap pages the descriptors of `pfns` span.
fn span(pfns: &Range<u64>) -> u64 {
    if pfns.start >= pfns.end {
        return 0;
    }
    // Independent of the base: it is page-aligned.
    (((pfns.end - 1) * DESC_SIZE) / PAGE_SIZE) - (pfns.start * DESC_SIZE / PAGE_SIZE) + 1
}

/// How many entries of `size` bytes a stretch of `bytes` of virtual space
/// can touch, at most.
fn entries(bytes: u64, size: u64) -> u64 {
    bytes / size + 2
}

/// A bound on the frames [`FrameAllocator::init`](super::FrameAllocator::init)
/// backs descriptors and records with (their pages and the page tables
/// under them), given the RAM below `limit` and the physical ranges of the
/// exclusions besides the reserve itself (which counts too: its own frames
/// are excluded, and their descriptors written).
///
/// Counts the pages of every reserved frame's descriptors; for free memory,
/// a page for each first frame of a block below a GiB, at most
/// 2 * MAX_ORDER + 1 per range (an exclusion splits a range in two) and
/// never more than the range's own descriptors span; the pages of the GiB
/// records of each run of RAM that holds an aligned GiB; and a page table
/// for each of those pages, plus the tables above them. Grows with
/// reserved memory and regions, and by a page per 256 GiB of RAM.
pub fn init_frames(map: &MemoryMap, limit: u64, exclusions: &[Range<u64>]) -> u64 {
    let limit_pfn = limit / PAGE_SIZE;
    let clip = |r: Range<u64>| r.start / PAGE_SIZE..(r.end / PAGE_SIZE).min(limit_pfn);
    let per_range = 2 * u64::from(MAX_ORDER) + 1;
    let (mut pages, mut top) = (0, 0);
    // The first page not counted yet: neighbours share pages.
    let mut next_page = 0;
    for r in map.regions().iter().filter(|r| r.kind.is_ram()) {
        let pfns = clip(r.start..r.end);
        if pfns.start >= pfns.end {
            continue;
        }
        top = pfns.end;
        let (first, last) = (
            pfns.start * DESC_SIZE / PAGE_SIZE,
            (pfns.end - 1) * DESC_SIZE / PAGE_SIZE,
        );
        let new = (last + 1).saturating_sub(first.max(next_page));
        next_page = next_page.max(last + 1);
        pages += match Reason::from_kind(r.kind) {
            None => per_range.min(new),
            Some(_) => new,
        };
    }
    for run in map.ram_runs().map(clip).filter(|r| r.start < r.end) {
        let gibs = (run.end >> MAX_ORDER)
            .saturating_sub(run.start.next_multiple_of(1 << MAX_ORDER) >> MAX_ORDER);
        if gibs > 0 {
            pages += gibs / (PAGE_SIZE / GIB_RECORD_SIZE) + 2;
        }
    }
    // Each exclusion (and the reserve) splits a free range in two.
    for e in exclusions {
        pages += span(&(e.start / PAGE_SIZE..e.end / PAGE_SIZE)) + per_range + 1;
    }
    pages += per_range + 1;
    // A page table per page, and the tables above them over the vmemmap
    // that RAM's descriptors span, and over the records.
    let vmemmap = top * DESC_SIZE;
    let upper = entries(vmemmap, 1 << 30) + entries(vmemmap, 1 << 39) + entries(vmemmap, 1 << 48);
    let without_reserve = 2 * pages + upper + 3;
    // The reserve's own descriptors: a page per 128 frames and its table.
    without_reserve + without_reserve / 63 + 4
}
