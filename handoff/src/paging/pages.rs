//! Page sizes, mappings and the plan: which leaves cover a range, and how
//! many page-table frames they need.
//!
//! Everything here is pure arithmetic on addresses. The builder writes
//! exactly the leaves [`largest_pages`] yields and allocates exactly the
//! tables [`minimum_tables`] counts; the tests hold it to both.

use x86_64::PhysAddr;
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::BuildError;
use crate::{Levels, PAGE_SIZE};

/// The size of a leaf mapping.
///
/// Ordered by size, so `max_page` comparisons read naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a leaf in a page table (level 1).
    Size4K,
    /// 2 MiB, a leaf in a page directory (level 2).
    Size2M,
    /// 1 GiB, a leaf in a page-directory-pointer table (level 3); needs the
    /// CPU's pdpe1gb feature.
    Size1G,
}

impl PageSize {
    /// Every size, smallest first.
    pub const ALL: [PageSize; 3] = [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G];

    /// The bytes one page of this size spans.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// log2 of [`bytes`](Self::bytes).
    pub const fn shift(self) -> u32 {
        entry_shift(self.level())
    }

    /// The table level whose entries are leaves of this size: 1 (page
    /// table), 2 (page directory) or 3 (PDPT).
    pub const fn level(self) -> u8 {
        match self {
            PageSize::Size4K => 1,
            PageSize::Size2M => 2,
            PageSize::Size1G => 3,
        }
    }

    /// The leaf size at table level `level`, if that level holds leaves.
    pub const fn at_level(level: u8) -> Option<PageSize> {
        match level {
            1 => Some(PageSize::Size4K),
            2 => Some(PageSize::Size2M),
            3 => Some(PageSize::Size1G),
            _ => None,
        }
    }
}

impl core::fmt::Display for PageSize {
    /// `4 KiB`, `2 MiB` or `1 GiB`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PageSize::Size4K => "4 KiB",
            PageSize::Size2M => "2 MiB",
            PageSize::Size1G => "1 GiB",
        })
    }
}

/// The PAT bit of a 4 KiB leaf (bit 7; with PWT and PCD it selects the PAT
/// entry). In a [`Mapping`] it asks for PAT, which only 4 KiB pages may
/// carry: a large entry keeps PAT in bit 12, inside the address field of
/// `PageTableEntry`, and baton never sets it there.
pub const PAT_4K: PageTableFlags = PageTableFlags::HUGE_PAGE;

/// The PAT bit of a 2 MiB or 1 GiB leaf (bit 12, where a 4 KiB entry has
/// address bits; bit 7 is PS there). The walker reports it in a large
/// leaf's flags; a [`Mapping`] never asks for it.
pub const PAT_LARGE: PageTableFlags = PageTableFlags::from_bits_retain(1 << 12);

/// The flags a [`Mapping`] may ask for. `PRESENT` and the large-page bit are
/// the builder's job; `USER_ACCESSIBLE`, the CPU's `ACCESSED`/`DIRTY` and the
/// software bits are never set by baton.
pub const LEAF_FLAGS: PageTableFlags = PageTableFlags::WRITABLE
    .union(PageTableFlags::NO_EXECUTE)
    .union(PageTableFlags::GLOBAL)
    .union(PageTableFlags::WRITE_THROUGH)
    .union(PageTableFlags::NO_CACHE)
    .union(PAT_4K);

/// The architectural limit of physical addresses (52 bits).
pub const PHYS_LIMIT: u64 = 1 << 52;

/// One range to map: `len` bytes from `virt` to `phys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The first virtual address (canonical, 4 KiB-aligned).
    pub virt: u64,
    /// The first physical address (4 KiB-aligned).
    pub phys: PhysAddr,
    /// The length in bytes (a non-zero multiple of 4 KiB).
    pub len: u64,
    /// Leaf permissions and caching, a subset of [`LEAF_FLAGS`].
    pub flags: PageTableFlags,
    /// The largest page size the builder may use.
    pub max_page: PageSize,
}

impl Mapping {
    /// The last virtual address of the range (inclusive, so a range that
    /// ends at the top of the address space has no overflow).
    pub const fn last(&self) -> u64 {
        self.virt.wrapping_add(self.len).wrapping_sub(1)
    }

    /// Whether the mapping translates `va`.
    pub const fn contains(&self, va: u64) -> bool {
        va.wrapping_sub(self.virt) < self.len
    }

    /// The leaves that cover the mapping, in address order.
    ///
    /// # Panics
    ///
    /// If `virt`, `phys` or `len` is not 4 KiB-aligned (see
    /// [`check`](Self::check)).
    pub fn pages(&self) -> LargestPages {
        largest_pages(self.virt, self.phys, self.len, self.max_page)
    }

    /// Checks everything about the mapping that does not depend on what is
    /// mapped already: alignment, length, flags, canonical range.
    pub fn check(&self, levels: Levels) -> Result<(), BuildError> {
        if self.len == 0 {
            return Err(BuildError::ZeroLength);
        }
        if !self.virt.is_multiple_of(PAGE_SIZE) {
            return Err(BuildError::VirtUnaligned { virt: self.virt });
        }
        if !self.phys.is_aligned(PAGE_SIZE) {
            return Err(BuildError::PhysUnaligned { phys: self.phys });
        }
        if !self.len.is_multiple_of(PAGE_SIZE) {
            return Err(BuildError::LenUnaligned { len: self.len });
        }
        let unsupported = self.flags.difference(LEAF_FLAGS);
        if !unsupported.is_empty() {
            return Err(BuildError::UnsupportedFlags { flags: unsupported });
        }
        if self.flags.contains(PAT_4K) && self.max_page != PageSize::Size4K {
            return Err(BuildError::PatOnLargePages);
        }
        if !levels.is_canonical(self.virt) {
            return Err(BuildError::NonCanonical { virt: self.virt });
        }
        let Some(last) = self.virt.checked_add(self.len - 1) else {
            return Err(BuildError::Wraps {
                virt: self.virt,
                len: self.len,
            });
        };
        // The upper half runs to the top of the address space, so only a
        // range starting in the lower half can reach the hole.
        let hole = 1u64 << (levels.va_bits() - 1);
        if self.virt < hole && last >= hole {
            return Err(BuildError::NonCanonical { virt: hole });
        }
        match self.phys.as_u64().checked_add(self.len) {
            Some(end) if end <= PHYS_LIMIT => Ok(()),
            _ => Err(BuildError::PhysOutOfRange {
                phys: self.phys,
                len: self.len,
            }),
        }
    }
}

/// The leaves that cover `len` bytes from `virt` to `phys`: at each step
/// the largest size, up to `max`, that both addresses are aligned to and
/// that fits in what is left.
///
/// Yields `(virt, phys, size)` in address order. `virt` advances modulo
/// 2^64, so a range may end at the very top of the address space.
///
/// # Panics
///
/// If `virt`, `phys` or `len` is not 4 KiB-aligned.
pub fn largest_pages(virt: u64, phys: PhysAddr, len: u64, max: PageSize) -> LargestPages {
    assert!(
        virt.is_multiple_of(PAGE_SIZE)
            && phys.is_aligned(PAGE_SIZE)
            && len.is_multiple_of(PAGE_SIZE),
        "largest_pages: {virt:#x} -> {phys:?} + {len:#x} is not 4 KiB-aligned"
    );
    LargestPages {
        virt,
        phys: phys.as_u64(),
        remaining: len,
        max,
    }
}

/// The iterator of [`largest_pages`].
#[derive(Debug, Clone)]
pub struct LargestPages {
    virt: u64,
    phys: u64,
    remaining: u64,
    max: PageSize,
}

impl Iterator for LargestPages {
    type Item = (u64, PhysAddr, PageSize);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let size = PageSize::ALL
            .into_iter()
            .rev()
            .filter(|&size| size <= self.max)
            .find(|size| {
                let mask = size.bytes() - 1;
                self.virt & mask == 0 && self.phys & mask == 0 && self.remaining >= size.bytes()
            })
            .unwrap_or(PageSize::Size4K);
        let item = (self.virt, PhysAddr::new(self.phys), size);
        self.virt = self.virt.wrapping_add(size.bytes());
        self.phys += size.bytes();
        self.remaining -= size.bytes();
        Some(item)
    }
}

/// Page-table frames per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TableCount {
    /// PML5 tables (the root in 5-level paging).
    pub pml5: u64,
    /// PML4 tables (the root in 4-level paging).
    pub pml4: u64,
    /// Page-directory-pointer tables (level 3).
    pub pdpt: u64,
    /// Page directories (level 2).
    pub pd: u64,
    /// Page tables (level 1).
    pub pt: u64,
}

impl TableCount {
    /// The tables at `level` (1 = page table .. 5 = PML5).
    ///
    /// # Panics
    ///
    /// If `level` is not in 1..=5.
    pub const fn at(&self, level: u8) -> u64 {
        match level {
            1 => self.pt,
            2 => self.pd,
            3 => self.pdpt,
            4 => self.pml4,
            5 => self.pml5,
            _ => panic!("no such table level"),
        }
    }

    /// All tables: the frames they take.
    pub const fn total(&self) -> u64 {
        self.pt + self.pd + self.pdpt + self.pml4 + self.pml5
    }

    pub(crate) fn add(&mut self, level: u8, n: u64) {
        let slot = match level {
            1 => &mut self.pt,
            2 => &mut self.pd,
            3 => &mut self.pdpt,
            4 => &mut self.pml4,
            5 => &mut self.pml5,
            _ => unreachable!("no table level {level}"),
        };
        *slot += n;
    }
}

impl core::fmt::Display for TableCount {
    /// `11 (PML5 0, PML4 1, PDPT 2, PD 5, PT 3)`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} (PML5 {}, PML4 {}, PDPT {}, PD {}, PT {})",
            self.total(),
            self.pml5,
            self.pml4,
            self.pdpt,
            self.pd,
            self.pt
        )
    }
}

/// Leaf mappings per page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct LeafCount {
    /// 4 KiB leaves.
    pub size_4k: u64,
    /// 2 MiB leaves.
    pub size_2m: u64,
    /// 1 GiB leaves.
    pub size_1g: u64,
}

impl core::fmt::Display for LeafCount {
    /// `4K 800 / 2M 510 / 1G 0`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "4K {} / 2M {} / 1G {}",
            self.size_4k, self.size_2m, self.size_1g
        )
    }
}

impl LeafCount {
    /// The leaves of `size`.
    pub const fn of(&self, size: PageSize) -> u64 {
        match size {
            PageSize::Size4K => self.size_4k,
            PageSize::Size2M => self.size_2m,
            PageSize::Size1G => self.size_1g,
        }
    }

    /// All leaves.
    pub const fn total(&self) -> u64 {
        self.size_4k + self.size_2m + self.size_1g
    }

    /// The bytes the leaves map.
    pub const fn bytes(&self) -> u64 {
        self.size_4k * PageSize::Size4K.bytes()
            + self.size_2m * PageSize::Size2M.bytes()
            + self.size_1g * PageSize::Size1G.bytes()
    }

    pub(crate) fn add(&mut self, size: PageSize, n: u64) {
        match size {
            PageSize::Size4K => self.size_4k += n,
            PageSize::Size2M => self.size_2m += n,
            PageSize::Size1G => self.size_1g += n,
        }
    }
}

/// The leaves [`largest_pages`] yields for `len` bytes from `virt` to
/// `phys`, per size, by arithmetic: O(1) however long the range.
///
/// # Panics
///
/// If `virt`, `phys` or `len` is not 4 KiB-aligned.
pub fn leaf_count(virt: u64, phys: PhysAddr, len: u64, max: PageSize) -> LeafCount {
    assert!(
        virt.is_multiple_of(PAGE_SIZE)
            && phys.is_aligned(PAGE_SIZE)
            && len.is_multiple_of(PAGE_SIZE),
        "leaf_count: {virt:#x} -> {phys:?} + {len:#x} is not 4 KiB-aligned"
    );
    let mut count = LeafCount::default();
    count_range(virt, phys.as_u64(), len, max, &mut count);
    count
}

/// Counts like the greedy walk: with a size both addresses share an offset
/// for, the walk reaches the first boundary of that size with smaller
/// pages, takes whole pages up to the last boundary, and ends with smaller
/// pages; a range holding no whole page of the size never uses it.
fn count_range(virt: u64, phys: u64, len: u64, max: PageSize, count: &mut LeafCount) {
    if len == 0 {
        return;
    }
    let size = max;
    let bytes = size.bytes();
    let smaller = match size {
        PageSize::Size1G => Some(PageSize::Size2M),
        PageSize::Size2M => Some(PageSize::Size4K),
        PageSize::Size4K => None,
    };
    let Some(smaller) = smaller else {
        count.add(PageSize::Size4K, len / PAGE_SIZE);
        return;
    };
    let co_aligned = (virt ^ phys) & (bytes - 1) == 0;
    // From `virt` to the first boundary of `size` (0 when aligned).
    let head = virt.wrapping_neg() & (bytes - 1);
    let middle = if co_aligned && head < len {
        (len - head) / bytes
    } else {
        0
    };
    if middle == 0 {
        count_range(virt, phys, len, smaller, count);
        return;
    }
    let tail = len - head - middle * bytes;
    count_range(virt, phys, head, smaller, count);
    count.add(size, middle);
    let after = head + middle * bytes;
    count_range(virt.wrapping_add(after), phys + after, tail, smaller, count);
}

/// The fewest page-table frames, per level, that hold the leaves
/// [`largest_pages`] yields for `mappings`: one table for every distinct
/// parent prefix of a leaf, the root counting once.
///
/// The mappings must be disjoint; one that [`Mapping::check`] rejects is
/// ignored. Allocates nothing: O(n) in the number of mappings when they are
/// sorted by virtual address (a plan's are), O(n²) otherwise; O(1) in their
/// lengths.
pub fn minimum_tables(mappings: &[Mapping], levels: Levels) -> TableCount {
    let top = levels.count() as u8;
    let mut count = TableCount::default();
    count.add(top, 1);
    if mappings.windows(2).all(|w| w[0].virt < w[1].virt) {
        return minimum_tables_sorted(mappings.iter().copied(), levels);
    }
    for level in 1..top {
        let mut tables = 0;
        for (i, mapping) in mappings.iter().enumerate() {
            let Some(blocks) = Blocks::new(mapping, level, levels) else {
                continue;
            };
            tables += blocks.needed();
            // Two disjoint ranges share a table only where the last block of
            // one is the first block of the other, so only the edges of
            // this mapping can already have been counted.
            let edges = [blocks.first, blocks.last];
            let edges = if blocks.first == blocks.last {
                &edges[..1]
            } else {
                &edges[..]
            };
            for &block in edges {
                let counted = mappings[..i].iter().any(|earlier| {
                    Blocks::new(earlier, level, levels).is_some_and(|b| b.needs(block))
                });
                if blocks.needs(block) && counted {
                    tables -= 1;
                }
            }
        }
        count.add(level, tables);
    }
    count
}

/// [`minimum_tables`] for mappings given in ascending, disjoint virtual
/// order by an iterator that can be walked again (one pass per level):
/// O(n), and nothing needs to hold the mappings.
pub fn minimum_tables_sorted<I>(mappings: I, levels: Levels) -> TableCount
where
    I: Iterator<Item = Mapping> + Clone,
{
    let top = levels.count() as u8;
    let mut count = TableCount::default();
    count.add(top, 1);
    for level in 1..top {
        count.add(level, sorted_tables(mappings.clone(), level, levels));
    }
    count
}

/// The level-`level` tables sorted, disjoint `mappings` need: a table is
/// shared only by neighbours, so the last block counted is the only one
/// the next mapping can find counted already.
fn sorted_tables(mappings: impl Iterator<Item = Mapping>, level: u8, levels: Levels) -> u64 {
    let mut tables = 0;
    let mut last_counted: Option<u64> = None;
    for mapping in mappings {
        let mapping = &mapping;
        let Some(blocks) = Blocks::new(mapping, level, levels) else {
            continue;
        };
        tables += blocks.needed();
        if blocks.needs(blocks.first) && last_counted == Some(blocks.first) {
            tables -= 1;
        }
        if blocks.needs(blocks.last) {
            last_counted = Some(blocks.last);
        } else if blocks.needs(blocks.first) {
            last_counted = Some(blocks.first);
        }
    }
    tables
}

/// The level-`level` tables one mapping needs, as blocks of the span one such
/// table covers (block number = address >> span shift).
struct Blocks {
    first: u64,
    last: u64,
    virt: u64,
    last_va: u64,
    shift: u32,
    /// Whether a leaf one level up can cover a whole block: those blocks
    /// need no table here.
    large: bool,
}

impl Blocks {
    fn new(mapping: &Mapping, level: u8, levels: Levels) -> Option<Blocks> {
        mapping.check(levels).ok()?;
        let shift = entry_shift(level + 1);
        let large = PageSize::at_level(level + 1).is_some_and(|size| {
            size <= mapping.max_page
                && (mapping.virt.wrapping_sub(mapping.phys.as_u64())) & (size.bytes() - 1) == 0
        });
        Some(Blocks {
            first: mapping.virt >> shift,
            last: mapping.last() >> shift,
            virt: mapping.virt,
            last_va: mapping.last(),
            shift,
            large,
        })
    }

    /// Whether block `block` is inside the range, edges included.
    fn covers(&self, block: u64) -> bool {
        let start = block << self.shift;
        start >= self.virt && start + ((1 << self.shift) - 1) <= self.last_va
    }

    fn needs(&self, block: u64) -> bool {
        (self.first..=self.last).contains(&block) && !(self.large && self.covers(block))
    }

    fn needed(&self) -> u64 {
        if !self.large {
            return self.last - self.first + 1;
        }
        let first = u64::from(self.needs(self.first));
        let last = u64::from(self.last != self.first && self.needs(self.last));
        first + last
    }
}

/// log2 of the bytes one entry of a level-`level` table spans.
pub(crate) const fn entry_shift(level: u8) -> u32 {
    12 + 9 * (level as u32 - 1)
}

/// The index of `va` in a level-`level` table.
pub(crate) const fn index(va: u64, level: u8) -> usize {
    ((va >> entry_shift(level)) & 511) as usize
}

/// The flags a table entry pointing to a lower table carries: leaves decide
/// the permissions, so tables allow everything but user access.
pub(crate) const TABLE_FLAGS: PageTableFlags =
    PageTableFlags::PRESENT.union(PageTableFlags::WRITABLE);

/// What a page-table entry holds, read as the CPU would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// All zero.
    Empty,
    /// A present entry that leads to a lower table.
    Table(PhysFrame, PageTableFlags),
    /// A present leaf. `flags` keeps bit 12 of a large leaf (its PAT bit).
    Leaf {
        phys: PhysAddr,
        size: PageSize,
        flags: PageTableFlags,
    },
    /// Not present but not zero, or a large-page bit where the level has no
    /// large pages (a reserved-bit fault): maps nothing.
    Other,
}

/// The raw 64-bit value of `entry`.
pub(crate) fn raw(entry: &PageTableEntry) -> u64 {
    entry.addr().as_u64() | entry.flags().bits()
}

/// Classifies the entry of a level-`level` table.
pub(crate) fn classify(entry: &PageTableEntry, level: u8) -> Entry {
    let raw = raw(entry);
    let flags = entry.flags();
    if raw == 0 {
        return Entry::Empty;
    }
    if !flags.contains(PageTableFlags::PRESENT) {
        return Entry::Other;
    }
    if level == 1 {
        return Entry::Leaf {
            phys: entry.addr(),
            size: PageSize::Size4K,
            flags,
        };
    }
    if !flags.contains(PageTableFlags::HUGE_PAGE) {
        return Entry::Table(PhysFrame::containing_address(entry.addr()), flags);
    }
    match PageSize::at_level(level) {
        Some(size) => Entry::Leaf {
            phys: PhysAddr::new(raw & 0x000f_ffff_ffff_f000 & !(size.bytes() - 1)),
            size,
            flags: PageTableFlags::from_bits_retain(flags.bits() | (raw & PAT_LARGE.bits())),
        },
        None => Entry::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The arithmetic count equals the greedy walk's, for any
        /// alignments, lengths and size limits.
        #[test]
        fn leaf_count_matches_the_walk(
            virt in 0u64..(1 << 28),
            phys in 0u64..(1 << 28),
            len in 1u64..(1 << 22),
            max in 0usize..3,
            scale in 0u32..3,
        ) {
            let page = |x: u64| x << 12;
            let (virt, phys, len) = (page(virt) << (scale * 4), page(phys) << (scale * 4), page(len));
            let max = PageSize::ALL[max];
            let mut walked = LeafCount::default();
            for (_, _, size) in largest_pages(virt, PhysAddr::new(phys), len, max) {
                walked.add(size, 1);
            }
            prop_assert_eq!(leaf_count(virt, PhysAddr::new(phys), len, max), walked);
        }

        /// The linear count for sorted mappings equals the general one.
        #[test]
        fn sorted_minimum_tables_match(
            raw in prop::collection::vec((0u64..64, 1u64..1024, 0usize..3, any::<bool>()), 1..24),
            five in any::<bool>(),
        ) {
            let levels = if five { Levels::Five } else { Levels::Four };
            let mut at = 0xffff_8000_0000_0000u64;
            let mut mappings = Vec::new();
            for (gap, pages, max, big) in raw {
                let unit = if big { 1 << 21 } else { 1 << 12 };
                at += gap * unit;
                let len = pages * unit;
                mappings.push(Mapping {
                    virt: at,
                    phys: PhysAddr::new(at & 0xf_ffff_ffff_f000),
                    len,
                    flags: PageTableFlags::WRITABLE,
                    max_page: PageSize::ALL[max],
                });
                at += len;
            }
            let sorted = minimum_tables(&mappings, levels);
            mappings.reverse();
            let general = minimum_tables(&mappings, levels);
            prop_assert_eq!(sorted, general);
        }
    }

    const W: PageTableFlags = PageTableFlags::WRITABLE;
    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;
    const K: u64 = 1 << 10;

    fn plan(virt: u64, phys: u64, len: u64, max: PageSize) -> Vec<(u64, u64, PageSize)> {
        largest_pages(virt, PhysAddr::new(phys), len, max)
            .map(|(v, p, s)| (v, p.as_u64(), s))
            .collect()
    }

    fn mapping(virt: u64, phys: u64, len: u64, max_page: PageSize) -> Mapping {
        Mapping {
            virt,
            phys: PhysAddr::new(phys),
            len,
            flags: W,
            max_page,
        }
    }

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::Size4K.bytes(), 4 * K);
        assert_eq!(PageSize::Size2M.bytes(), 2 * M);
        assert_eq!(PageSize::Size1G.bytes(), G);
        for size in PageSize::ALL {
            assert_eq!(PageSize::at_level(size.level()), Some(size));
        }
        assert_eq!(PageSize::at_level(4), None);
        assert!(PageSize::Size4K < PageSize::Size2M && PageSize::Size2M < PageSize::Size1G);
    }

    #[test]
    fn plan_grows_then_shrinks() {
        use PageSize::*;
        // 4K up to the 2M boundary, 2M up to 1G, 1G, then back down.
        let virt = G - 2 * M - 4 * K;
        let len = 4 * K + 2 * M + G + 2 * M + 4 * K;
        assert_eq!(
            plan(virt, virt, len, Size1G),
            vec![
                (virt, virt, Size4K),
                (G - 2 * M, G - 2 * M, Size2M),
                (G, G, Size1G),
                (2 * G, 2 * G, Size2M),
                (2 * G + 2 * M, 2 * G + 2 * M, Size4K),
            ]
        );
        // Without 1 GiB pages the middle is 512 + 1 pages of 2 MiB.
        let pages = plan(virt, virt, len, Size2M);
        assert_eq!(pages.len(), 1 + 1 + 512 + 1 + 1);
        assert!(pages[1..515].iter().all(|&(_, _, s)| s == Size2M));
    }

    #[test]
    fn plan_follows_the_weaker_alignment() {
        use PageSize::*;
        // Physical address only 4 KiB-aligned: 4 KiB pages throughout.
        assert!(
            plan(0, 4 * K, 4 * M, Size1G)
                .iter()
                .all(|&(_, _, s)| s == Size4K)
        );
        // Both 2 MiB-aligned but not 1 GiB-compatible: 2 MiB pages.
        let pages = plan(G, 2 * M, 2 * G, Size1G);
        assert_eq!(pages.len(), 1024);
        assert!(pages.iter().all(|&(_, _, s)| s == Size2M));
        // The top of the 4-level address space: the range ends at 2^64.
        let top = 0xffff_ffff_ffe0_0000;
        assert_eq!(plan(top, 0, 2 * M, Size2M), vec![(top, 0, Size2M)]);
        assert_eq!(plan(0, 0, 0, Size1G), vec![]);
    }

    #[test]
    #[should_panic(expected = "not 4 KiB-aligned")]
    fn plan_rejects_unaligned_input() {
        let _ = largest_pages(0x800, PhysAddr::new(0), 4 * K, PageSize::Size4K);
    }

    #[test]
    fn check_accepts_a_range_that_ends_at_the_top() {
        let top = mapping(0xffff_ffff_fff0_0000, 0, M, PageSize::Size2M);
        assert_eq!(top.check(Levels::Four), Ok(()));
        assert!(top.contains(0xffff_ffff_ffff_f000) && !top.contains(0));
        assert_eq!(top.last(), u64::MAX);
    }

    #[test]
    fn minimum_tables_examples() {
        use PageSize::*;
        let one_page = [mapping(0, 0, 4 * K, Size1G)];
        let four = |pdpt, pd, pt| TableCount {
            pml5: 0,
            pml4: 1,
            pdpt,
            pd,
            pt,
        };
        assert_eq!(minimum_tables(&one_page, Levels::Four), four(1, 1, 1));
        assert_eq!(
            minimum_tables(&one_page, Levels::Five),
            TableCount {
                pml5: 1,
                pml4: 1,
                ..four(1, 1, 1)
            }
        );
        assert_eq!(minimum_tables(&[], Levels::Four), four(0, 0, 0));
        // One 1 GiB leaf needs no directory; without 1 GiB pages it needs one.
        let gig = mapping(G, G, G, Size1G);
        assert_eq!(minimum_tables(&[gig], Levels::Four), four(1, 0, 0));
        assert_eq!(
            minimum_tables(
                &[Mapping {
                    max_page: Size2M,
                    ..gig
                }],
                Levels::Four
            ),
            four(1, 1, 0)
        );
        // Two mappings sharing a page table count it once; a third in the
        // next 2 MiB needs another.
        let shared = [
            mapping(0x1000, 0x1000, 4 * K, Size4K),
            mapping(0x3000, 0x9000, 8 * K, Size4K),
            mapping(2 * M, 0, 4 * K, Size4K),
        ];
        assert_eq!(minimum_tables(&shared, Levels::Four), four(1, 1, 2));
        // Head and tail of one mapping in different directories and tables;
        // a rejected mapping is ignored.
        let wide = [
            mapping(G - 4 * K, G - 4 * K, G + 8 * K, Size1G),
            mapping(0x123, 0, 4 * K, Size4K),
        ];
        assert_eq!(minimum_tables(&wide, Levels::Four), four(1, 2, 2));
    }

    fn size() -> impl Strategy<Value = PageSize> {
        prop_oneof![
            Just(PageSize::Size4K),
            Just(PageSize::Size2M),
            Just(PageSize::Size1G)
        ]
    }

    proptest! {
        #[test]
        fn plan_is_exact_and_greedy(
            virt_pages in 0u64..(1 << 20),
            delta in prop_oneof![Just(0u64), (1u64..64).prop_map(|k| k * 512), 1u64..(1 << 20)],
            pages in 0u64..(1 << 19),
            max in size(),
        ) {
            // Phys = virt + delta pages: compatible with 1 GiB, 2 MiB or only
            // 4 KiB pages. Keep the 4 KiB-only plans short.
            let only_4k = max == PageSize::Size4K || delta % 512 != 0;
            let pages = if only_4k { pages % 4096 } else { pages };
            let (virt, phys, len) = (virt_pages * 4 * K, (virt_pages + delta) * 4 * K, pages * 4 * K);
            let mut at = (virt, phys);
            for (v, p, size) in largest_pages(virt, PhysAddr::new(phys), len, max) {
                prop_assert_eq!((v, p.as_u64()), at);
                prop_assert!(size <= max);
                prop_assert_eq!(v % size.bytes(), 0);
                prop_assert_eq!(p.as_u64() % size.bytes(), 0);
                // Greedy: the next size up was not possible here.
                if let Some(bigger) = PageSize::at_level(size.level() + 1).filter(|&b| b <= max) {
                    let fits = v % bigger.bytes() == 0
                        && p.as_u64() % bigger.bytes() == 0
                        && virt + len - v >= bigger.bytes();
                    prop_assert!(!fits, "{:#x} could take a {:?} page", v, bigger);
                }
                at = (v + size.bytes(), p.as_u64() + size.bytes());
            }
            prop_assert_eq!(at, (virt + len, phys + len));
        }
    }
}
