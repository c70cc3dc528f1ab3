//! The page-table walker: reads tables through a [`PhysWindow`] (in the
//! kernel, the live tables through the physmap) and reports leaves,
//! translations and statistics.
//!
//! Address ranges given to the walker are `(start, end)` with `end`
//! exclusive and `end == 0` standing for the top of the address space, so
//! `(0, 0)` is everything.

use core::fmt;

use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTable, PageTableFlags, PhysFrame};

use super::pages::{Entry, LeafCount, PAT_4K, PAT_LARGE, PageSize, TableCount};
use super::pages::{classify, entry_shift, index, raw};

/// The root-table entries that map the lower half, in both paging modes.
pub const LOWER_HALF_ENTRIES: usize = 256;
use crate::Levels;
use crate::phys::PhysWindow;

/// Reads the tables under one root.
pub struct Walker<'a, W: PhysWindow + ?Sized> {
    window: &'a W,
    root: PhysFrame,
    levels: Levels,
}

// Not derived: a derive would ask `W: Clone`.
impl<W: PhysWindow + ?Sized> Clone for Walker<'_, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W: PhysWindow + ?Sized> Copy for Walker<'_, W> {}

impl<W: PhysWindow + ?Sized> fmt::Debug for Walker<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Walker")
            .field("root", &self.root)
            .field("levels", &self.levels)
            .finish_non_exhaustive()
    }
}

/// One leaf mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Leaf {
    /// The first virtual address (sign-extended).
    pub virt: u64,
    /// The first physical address.
    pub phys: PhysAddr,
    /// The page size.
    pub size: PageSize,
    /// The entry's flags as stored (with `PRESENT`, and `HUGE_PAGE` on a
    /// large page). The PAT bit of a large page, bit 12, is kept as an
    /// unnamed bit; see [`pat`](Self::pat).
    pub flags: PageTableFlags,
    /// The level of the table holding the entry: 1 (4 KiB), 2 (2 MiB) or
    /// 3 (1 GiB).
    pub level: u8,
}

impl Leaf {
    /// Whether the leaf selects a PAT entry with its PAT bit (bit 7 of a
    /// 4 KiB leaf, bit 12 of a large one).
    pub fn pat(&self) -> bool {
        match self.size {
            PageSize::Size4K => self.flags.contains(PAT_4K),
            _ => self.flags.contains(PAT_LARGE),
        }
    }
}

/// Where an address goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Translation {
    /// The physical address of the byte.
    pub phys: PhysAddr,
    /// The leaf that maps it.
    pub leaf: Leaf,
}

/// What the tables hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Stats {
    /// Page-table frames per level, the root included.
    pub tables: TableCount,
    /// Leaf mappings per size.
    pub leaves: LeafCount,
}

impl<'a, W: PhysWindow + ?Sized> Walker<'a, W> {
    /// A walker over the tables under `root`.
    pub fn new(window: &'a W, root: PhysFrame, levels: Levels) -> Self {
        Walker {
            window,
            root,
            levels,
        }
    }

    /// The root table.
    pub fn root(&self) -> PhysFrame {
        self.root
    }

    /// The paging mode.
    pub fn levels(&self) -> Levels {
        self.levels
    }

    pub(crate) fn window(&self) -> &'a W {
        self.window
    }

    /// Every leaf, in ascending (sign-extended) address order.
    pub fn leaves(&self) -> Leaves<'a, W> {
        self.leaves_in(0, 0)
    }

    /// The leaves that map some of `start..end`, in ascending order. A leaf
    /// may start before `start`.
    pub fn leaves_in(&self, start: u64, end: u64) -> Leaves<'a, W> {
        let top = self.levels.count() as u8;
        let last = end.wrapping_sub(1);
        let mut leaves = Leaves {
            window: self.window,
            levels: self.levels,
            lo: start,
            hi: last,
            top,
            level: top,
            tables: [None; 5],
            base: [0; 5],
            next: [0; 5],
        };
        if end != 0 && end <= start {
            leaves.level = top + 1;
        } else {
            leaves.tables[top as usize - 1] = Some(self.window.table(self.root));
        }
        leaves
    }

    /// Where `va` goes, if it is mapped.
    pub fn translate(&self, va: u64) -> Option<Translation> {
        if !self.levels.is_canonical(va) {
            return None;
        }
        self.translate_under(self.root, self.levels.count() as u8, va)
    }

    /// Where `va` goes, read from `table`, the level-`level` table whose
    /// span holds it, without reading the tables above (which another
    /// writer may be changing).
    pub fn translate_under(&self, table: PhysFrame, level: u8, va: u64) -> Option<Translation> {
        let mut table = self.window.table(table);
        let mut level = level;
        loop {
            match classify(&table[index(va, level)], level) {
                Entry::Table(frame, _) => {
                    table = self.window.table(frame);
                    level -= 1;
                }
                Entry::Leaf { phys, size, flags } => {
                    let offset = va & (size.bytes() - 1);
                    let leaf = Leaf {
                        virt: va - offset,
                        phys,
                        size,
                        flags,
                        level,
                    };
                    return Some(Translation {
                        phys: phys + offset,
                        leaf,
                    });
                }
                Entry::Empty | Entry::Other => return None,
            }
        }
    }

    /// The first present entry of the root table that maps the lower half
    /// (entries 0-255 of the PML4 or PML5), as `(index, raw entry)`.
    ///
    /// Stronger than finding no lower-half leaf: a present top-level entry
    /// there, even over empty tables, is already more than an empty lower
    /// half.
    pub fn lower_half_entry(&self) -> Option<(usize, u64)> {
        self.window
            .table(self.root)
            .iter()
            .take(LOWER_HALF_ENTRIES)
            .enumerate()
            .map(|(i, entry)| (i, raw(entry)))
            .find(|&(_, value)| value & PageTableFlags::PRESENT.bits() != 0)
    }

    /// Page-table frames per level and leaves per size.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        self.count(
            self.window.table(self.root),
            self.levels.count() as u8,
            &mut stats,
        );
        stats
    }

    fn count(&self, table: &PageTable, level: u8, stats: &mut Stats) {
        stats.tables.add(level, 1);
        for entry in table.iter() {
            match classify(entry, level) {
                Entry::Table(frame, _) => self.count(self.window.table(frame), level - 1, stats),
                Entry::Leaf { size, .. } => stats.leaves.add(size, 1),
                Entry::Empty | Entry::Other => {}
            }
        }
    }

    /// The leaves that start in `start..end`, per size.
    pub fn leaf_count_in(&self, start: u64, end: u64) -> LeafCount {
        let last = end.wrapping_sub(1);
        let mut count = LeafCount::default();
        for leaf in self.leaves_in(start, end) {
            if leaf.virt >= start && leaf.virt <= last {
                count.add(leaf.size, 1);
            }
        }
        count
    }

    /// Leaf mappings per size for each `(name, start, end)` region: the
    /// leaves that start in the region.
    pub fn region_stats<'r>(
        &self,
        regions: &'r [(&'r str, u64, u64)],
    ) -> impl Iterator<Item = (&'r str, LeafCount)> + use<'a, 'r, W> {
        let walker = *self;
        regions
            .iter()
            .map(move |&(name, start, end)| (name, walker.leaf_count_in(start, end)))
    }
}

/// The iterator of [`Walker::leaves`] and [`Walker::leaves_in`]: a
/// depth-first walk with an explicit stack, one slot per level.
pub struct Leaves<'a, W: PhysWindow + ?Sized> {
    window: &'a W,
    levels: Levels,
    /// The first and last address wanted (inclusive).
    lo: u64,
    hi: u64,
    top: u8,
    /// The level being walked; `top + 1` when done.
    level: u8,
    /// Per level (index `level - 1`): the table, the address its first
    /// entry maps (unused at the top) and the next entry to read.
    tables: [Option<&'a PageTable>; 5],
    base: [u64; 5],
    next: [u16; 5],
}

impl<W: PhysWindow + ?Sized> fmt::Debug for Leaves<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaves")
            .field("lo", &self.lo)
            .field("hi", &self.hi)
            .field("level", &self.level)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<W: PhysWindow + ?Sized> Iterator for Leaves<'_, W> {
    type Item = Leaf;

    fn next(&mut self) -> Option<Leaf> {
        while self.level <= self.top {
            let slot = self.level as usize - 1;
            let i = self.next[slot];
            if i == 512 {
                self.level += 1;
                continue;
            }
            self.next[slot] += 1;
            let shift = entry_shift(self.level);
            let virt = if self.level == self.top {
                self.levels.sign_extend(u64::from(i) << shift)
            } else {
                self.base[slot] + (u64::from(i) << shift)
            };
            let last = virt + ((1 << shift) - 1);
            if last < self.lo {
                continue;
            }
            if virt > self.hi {
                // Entries only go up from here.
                self.next[slot] = 512;
                continue;
            }
            let table = self.tables[slot].expect("a table at every level being walked");
            match classify(&table[usize::from(i)], self.level) {
                Entry::Leaf { phys, size, flags } => {
                    return Some(Leaf {
                        virt,
                        phys,
                        size,
                        flags,
                        level: self.level,
                    });
                }
                Entry::Table(frame, _) => {
                    self.level -= 1;
                    self.tables[slot - 1] = Some(self.window.table(frame));
                    self.base[slot - 1] = virt;
                    self.next[slot - 1] = 0;
                }
                Entry::Empty | Entry::Other => {}
            }
        }
        None
    }
}
