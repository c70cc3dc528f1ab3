//! The vmalloc allocator: virtually contiguous ranges of the vmalloc region
//! (`[vmalloc_base, vmalloc_end)` of the [`Layout`]), each followed by an
//! unmapped guard page.
//!
//! It hands out addresses only; the kernel backs an [`Area`] with frames and
//! maps it, and unmaps it (see [`Unmapper`](crate::paging::Unmapper))
//! before [`free`](Vmalloc::free). Running off the end of an area lands in
//! its guard page, which nothing maps and no other area overlaps, so the
//! overrun faults instead of corrupting a neighbour.
//!
//! The bookkeeping is a sorted array of the areas in use, of fixed capacity
//! (no allocation): the free space is the gaps between them, so freed space
//! rejoins its neighbours without any merging step. Allocation is first fit
//! by address, O(n) in the areas in use; freeing finds the area by binary
//! search and closes the gap in the array, O(n) moves.

use core::fmt;

use crate::PAGE_SIZE;
use crate::layout::Layout;

/// The guard after every area: one unmapped page.
pub const GUARD_SIZE: u64 = PAGE_SIZE;

/// The capacity the kernel uses: 4096 areas, 64 KiB of bookkeeping.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A range handed out by [`Vmalloc::alloc`]: `size` bytes from `start`, then
/// the guard page at [`guard`](Self::guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Area {
    /// The first address (page-aligned, and aligned as asked).
    pub start: u64,
    /// The usable bytes (a non-zero multiple of 4 KiB).
    pub size: u64,
}

impl Area {
    const EMPTY: Area = Area { start: 0, size: 0 };

    /// The end of the usable range (exclusive): the guard page's address.
    pub const fn end(&self) -> u64 {
        self.start + self.size
    }

    /// The guard page's address.
    pub const fn guard(&self) -> u64 {
        self.end()
    }

    /// The end of the area with its guard page (exclusive): where the next
    /// area may start.
    pub const fn span_end(&self) -> u64 {
        self.end() + GUARD_SIZE
    }

    /// The usable 4 KiB pages.
    pub const fn pages(&self) -> u64 {
        self.size / PAGE_SIZE
    }

    /// Whether `va` lies in the usable range.
    pub const fn contains(&self, va: u64) -> bool {
        self.start <= va && va < self.end()
    }
}

/// Why an area could not be allocated or freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmallocError {
    /// The size asked for is zero.
    ZeroSize,
    /// The alignment asked for is not a power of two.
    BadAlign {
        /// The alignment asked for.
        align: u64,
    },
    /// No gap of the region holds the size, aligned, and a guard page.
    NoSpace {
        /// The size asked for.
        size: u64,
        /// The alignment asked for.
        align: u64,
    },
    /// Every slot of the bookkeeping is in use.
    Full {
        /// The number of slots.
        capacity: usize,
    },
    /// No area starts at this address.
    NotAnArea {
        /// The address given.
        start: u64,
    },
}

impl fmt::Display for VmallocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VmallocError::ZeroSize => write!(f, "vmalloc of zero bytes"),
            VmallocError::BadAlign { align } => {
                write!(f, "vmalloc alignment {align:#x} is not a power of two")
            }
            VmallocError::NoSpace { size, align } => write!(
                f,
                "no room in vmalloc space for {size:#x} bytes aligned to {align:#x}"
            ),
            VmallocError::Full { capacity } => {
                write!(f, "vmalloc bookkeeping full: {capacity} areas in use")
            }
            VmallocError::NotAnArea { start } => write!(f, "no vmalloc area starts at {start:#x}"),
        }
    }
}

impl core::error::Error for VmallocError {}

/// The allocator of vmalloc space, with room for `N` areas.
pub struct Vmalloc<const N: usize = DEFAULT_CAPACITY> {
    base: u64,
    end: u64,
    /// The areas in use, sorted by start, in `areas[..len]`.
    areas: [Area; N],
    len: usize,
}

impl<const N: usize> fmt::Debug for Vmalloc<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vmalloc")
            .field("base", &format_args!("{:#x}", self.base))
            .field("end", &format_args!("{:#x}", self.end))
            .field("areas", &self.len)
            .field("capacity", &N)
            .finish()
    }
}

impl<const N: usize> Vmalloc<N> {
    /// An allocator over `[base, end)`, all of it free.
    ///
    /// # Panics
    ///
    /// If `base` or `end` is not 4 KiB-aligned, or `end` is not above
    /// `base`.
    pub const fn new(base: u64, end: u64) -> Self {
        assert!(
            base.is_multiple_of(PAGE_SIZE) && end.is_multiple_of(PAGE_SIZE) && base < end,
            "vmalloc: bad region"
        );
        Vmalloc {
            base,
            end,
            areas: [Area::EMPTY; N],
            len: 0,
        }
    }

    /// An allocator over the layout's vmalloc region.
    pub const fn for_layout(layout: &Layout) -> Self {
        Self::new(layout.vmalloc_base(), layout.vmalloc_end())
    }

    /// The region managed: `(base, end)`, `end` exclusive.
    pub const fn region(&self) -> (u64, u64) {
        (self.base, self.end)
    }

    /// The areas in use, sorted by address.
    pub fn areas(&self) -> &[Area] {
        &self.areas[..self.len]
    }

    /// The number of areas in use.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no area is in use.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most areas that can be in use at once.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The usable bytes of the areas in use (guard pages not counted).
    pub fn bytes(&self) -> u64 {
        self.areas().iter().map(|a| a.size).sum()
    }

    /// Allocates `size` bytes (rounded up to whole pages) at an address
    /// aligned to `align` (at least a page), followed by a guard page: the
    /// lowest such range that fits in a gap.
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<Area, VmallocError> {
        if size == 0 {
            return Err(VmallocError::ZeroSize);
        }
        if !align.is_power_of_two() {
            return Err(VmallocError::BadAlign { align });
        }
        if self.len == N {
            return Err(VmallocError::Full { capacity: N });
        }
        let no_space = VmallocError::NoSpace { size, align };
        let pages = size.checked_next_multiple_of(PAGE_SIZE).ok_or(no_space)?;
        let span = pages.checked_add(GUARD_SIZE).ok_or(no_space)?;
        let align = align.max(PAGE_SIZE);
        let mut gap_start = self.base;
        for i in 0..=self.len {
            let gap_end = match self.areas().get(i) {
                Some(area) => area.start,
                None => self.end,
            };
            if let Some(start) = gap_start.checked_next_multiple_of(align)
                && start <= gap_end
                && gap_end - start >= span
            {
                let area = Area { start, size: pages };
                self.areas.copy_within(i..self.len, i + 1);
                self.areas[i] = area;
                self.len += 1;
                return Ok(area);
            }
            if let Some(area) = self.areas().get(i) {
                gap_start = area.span_end();
            }
        }
        Err(no_space)
    }

    /// Frees the area starting at `start` and returns it. The kernel must
    /// have unmapped it (and invalidated the TLB) first.
    pub fn free(&mut self, start: u64) -> Result<Area, VmallocError> {
        let i = self
            .areas()
            .binary_search_by_key(&start, |a| a.start)
            .map_err(|_| VmallocError::NotAnArea { start })?;
        let area = self.areas[i];
        self.areas.copy_within(i + 1..self.len, i);
        self.len -= 1;
        Ok(area)
    }

    /// The area whose usable range or guard page holds `va`, for the fault
    /// handler: a fault at [`Area::guard`] is an overrun of that area.
    pub fn find(&self, va: u64) -> Option<Area> {
        let areas = self.areas();
        let i = areas.partition_point(|a| a.span_end() <= va);
        areas.get(i).copied().filter(|a| a.start <= va)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Levels;

    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    const BASE: u64 = 0xffff_c900_0000_0000;

    #[test]
    fn areas_follow_each_other_with_a_guard_page_between() {
        let mut v = Vmalloc::<16>::new(BASE, BASE + 64 * M);
        let a = v.alloc(1, 1).unwrap();
        assert_eq!(
            a,
            Area {
                start: BASE,
                size: 4 * K
            }
        );
        assert_eq!(
            (a.guard(), a.span_end(), a.pages()),
            (BASE + 4 * K, BASE + 8 * K, 1)
        );
        let b = v.alloc(12 * K, 4 * K).unwrap();
        assert_eq!(b.start, a.span_end());
        // 2 MiB alignment skips ahead; the gap before stays free.
        let c = v.alloc(2 * M, 2 * M).unwrap();
        assert_eq!(c.start, BASE + 2 * M);
        let d = v.alloc(4 * K, 0).unwrap_err();
        assert_eq!(d, VmallocError::BadAlign { align: 0 });
        let d = v.alloc(8 * K, 4 * K).unwrap();
        assert_eq!(d.start, b.span_end(), "the gap below `c` is reused");
        assert_eq!(v.areas(), [a, b, d, c]);
        assert_eq!(v.bytes(), 4 * K + 12 * K + 8 * K + 2 * M);
    }

    #[test]
    fn freed_space_rejoins_its_neighbours() {
        let mut v = Vmalloc::<16>::new(BASE, BASE + 64 * M);
        let a = v.alloc(4 * K, 1).unwrap();
        let b = v.alloc(8 * K, 1).unwrap();
        let c = v.alloc(4 * K, 1).unwrap();
        assert_eq!(v.free(b.start), Ok(b));
        assert_eq!(
            v.free(b.start),
            Err(VmallocError::NotAnArea { start: b.start })
        );
        // The freed area and its guard: exactly room for 8 KiB plus a guard.
        assert_eq!(v.alloc(8 * K, 1).unwrap(), b);
        v.free(b.start).unwrap();
        // Freeing `a` too joins the two gaps: 20 KiB + guard fits below `c`.
        v.free(a.start).unwrap();
        let big = v.alloc(16 * K, 1).unwrap();
        assert_eq!(big.start, BASE);
        assert_eq!(big.span_end(), c.start);
        assert_eq!(v.alloc(4 * K, 1).unwrap().start, c.span_end());
    }

    #[test]
    fn errors() {
        let mut v = Vmalloc::<2>::new(BASE, BASE + 64 * K);
        assert_eq!(v.alloc(0, 1), Err(VmallocError::ZeroSize));
        assert_eq!(v.alloc(4 * K, 3), Err(VmallocError::BadAlign { align: 3 }));
        // The whole region, less the guard page, fits; a page more does not.
        assert_eq!(
            v.alloc(64 * K, 1),
            Err(VmallocError::NoSpace {
                size: 64 * K,
                align: 1
            })
        );
        assert_eq!(
            v.alloc(u64::MAX, 1),
            Err(VmallocError::NoSpace {
                size: u64::MAX,
                align: 1
            })
        );
        assert_eq!(
            v.alloc(4 * K, 1 << 63),
            Err(VmallocError::NoSpace {
                size: 4 * K,
                align: 1 << 63
            })
        );
        let all = v.alloc(60 * K, 1).unwrap();
        assert_eq!(all.span_end(), BASE + 64 * K);
        v.free(all.start).unwrap();
        v.alloc(4 * K, 1).unwrap();
        v.alloc(4 * K, 1).unwrap();
        assert_eq!(v.alloc(4 * K, 1), Err(VmallocError::Full { capacity: 2 }));
        assert_eq!(
            v.free(BASE + K),
            Err(VmallocError::NotAnArea { start: BASE + K })
        );
        assert_eq!(
            VmallocError::Full { capacity: 2 }.to_string(),
            "vmalloc bookkeeping full: 2 areas in use"
        );
    }

    #[test]
    fn find_names_the_area_of_an_address_or_its_guard() {
        let mut v = Vmalloc::<16>::new(BASE, BASE + 64 * M);
        let a = v.alloc(8 * K, 1).unwrap();
        let b = v.alloc(4 * K, 2 * M).unwrap();
        assert_eq!(v.find(BASE), Some(a));
        assert_eq!(v.find(a.guard() + 0xfff), Some(a));
        assert_eq!(v.find(a.span_end()), None);
        assert_eq!(v.find(b.start - 1), None);
        assert_eq!(v.find(b.guard()), Some(b));
        assert_eq!(v.find(b.span_end()), None);
        assert_eq!(v.find(BASE - 1), None);
    }

    #[test]
    fn the_layout_region() {
        for levels in [Levels::Four, Levels::Five] {
            let layout = Layout::fixed(levels);
            let mut v = Box::new(Vmalloc::<DEFAULT_CAPACITY>::for_layout(layout));
            assert_eq!(v.region(), (layout.vmalloc_base(), layout.vmalloc_end()));
            let size = layout.vmalloc_end() - layout.vmalloc_base() - GUARD_SIZE;
            let all = v.alloc(size, 1 << 30).unwrap();
            assert_eq!(all.start, layout.vmalloc_base());
            assert!(v.alloc(4 * K, 1).is_err());
        }
    }

    /// One step of a random sequence: allocate `pages` pages at an
    /// alignment of `2^(12 + shift)`, or free the `n`-th area in use.
    #[derive(Debug, Clone)]
    enum Op {
        Alloc { bytes: u64, shift: u32 },
        Free(prop::sample::Index),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u64..(64 * K), 0u32..10).prop_map(|(bytes, shift)| Op::Alloc { bytes, shift }),
            1 => (1u64..(4 * M), 0u32..12).prop_map(|(bytes, shift)| Op::Alloc { bytes, shift }),
            3 => any::<prop::sample::Index>().prop_map(Op::Free),
        ]
    }

    /// Whether `area` (with its guard) fits in `[base, end)` without
    /// touching any of `others` (with theirs).
    fn fits(area: &Area, others: &[Area], base: u64, end: u64) -> bool {
        area.start >= base
            && area.span_end() <= end
            && others
                .iter()
                .all(|o| o.span_end() <= area.start || area.span_end() <= o.start)
    }

    proptest! {
        #[test]
        fn areas_and_guards_never_overlap(ops in proptest::collection::vec(op(), 1..200)) {
            const N: usize = 24;
            let (base, end) = (BASE + 2 * M, BASE + 34 * M);
            let mut v = Vmalloc::<N>::new(base, end);
            let mut model: Vec<Area> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc { bytes, shift } => {
                        let align = 1u64 << (12 + shift);
                        let pages = bytes.next_multiple_of(4 * K);
                        // The lowest aligned start that fits, by brute force
                        // over the candidates: the region's base and every
                        // area's span end, aligned up.
                        let lowest = core::iter::once(base)
                            .chain(model.iter().map(Area::span_end))
                            .map(|at| Area { start: at.next_multiple_of(align), size: pages })
                            .filter(|a| fits(a, &model, base, end))
                            .map(|a| a.start)
                            .min();
                        match v.alloc(bytes, align) {
                            Ok(area) => {
                                prop_assert!(model.len() < N);
                                prop_assert_eq!(area.size, pages);
                                prop_assert_eq!(area.start % align, 0);
                                prop_assert!(fits(&area, &model, base, end), "{:x?} overlaps", area);
                                prop_assert_eq!(Some(area.start), lowest, "not the lowest fit");
                                model.push(area);
                            }
                            Err(VmallocError::Full { capacity }) => {
                                prop_assert_eq!(capacity, N);
                                prop_assert_eq!(model.len(), N);
                            }
                            Err(err) => {
                                prop_assert_eq!(err, VmallocError::NoSpace { size: bytes, align });
                                prop_assert_eq!(lowest, None, "room was left");
                            }
                        }
                    }
                    Op::Free(index) => {
                        if model.is_empty() {
                            prop_assert!(v.free(base).is_err());
                            continue;
                        }
                        let area = model.swap_remove(index.index(model.len()));
                        prop_assert_eq!(v.free(area.start), Ok(area));
                        prop_assert_eq!(v.free(area.start), Err(VmallocError::NotAnArea { start: area.start }));
                    }
                }
                model.sort_by_key(|a| a.start);
                prop_assert_eq!(v.areas(), &model[..]);
                for a in &model {
                    prop_assert_eq!(v.find(a.start), Some(*a));
                    prop_assert_eq!(v.find(a.guard()), Some(*a));
                }
            }
            // Everything comes back: after freeing all, the whole region is
            // one gap again.
            for a in model {
                v.free(a.start).unwrap();
            }
            prop_assert!(v.is_empty());
            let all = v.alloc(end - base - GUARD_SIZE, 1).unwrap();
            prop_assert_eq!(all, Area { start: base, size: end - base - GUARD_SIZE });
        }
    }
}
