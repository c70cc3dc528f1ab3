//! The page-table builder: writes [`Mapping`]s into page tables through the
//! [`phys`](crate::phys) seam.
//!
//! It fills tables top-down, recursing once per table: each call walks its
//! table's slice of the range once, writes every run of leaves in a tight
//! loop (checked for overlap, then written, both vectorized) and descends
//! only where a leaf cannot cover a whole entry. Nothing is re-walked from
//! the root per page, and the `PhysWindow` is asked for a table once per run
//! or child, never per page. A table it has just allocated is written in one
//! pass: the entries the range covers get leaves or table pointers, the
//! others are cleared. And a table is allocated only where a leaf cannot
//! do, so the frames used are exactly [`minimum_tables`].
//!
//! [`minimum_tables`]: super::minimum_tables

use core::fmt;

use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTable, PageTableFlags, PhysFrame};

use super::pages::{Entry, LeafCount, Mapping, PageSize, TABLE_FLAGS, TableCount};
use super::pages::{classify, entry_shift, index};
use super::walker::Walker;
use crate::Levels;
use crate::phys::{FrameSource, PhysWindow};

/// Why a table could not be built or a mapping not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The frame source has no frame left for a page table.
    OutOfFrames,
    /// The mapping has length zero.
    ZeroLength,
    /// The virtual address is not 4 KiB-aligned.
    VirtUnaligned {
        /// The address asked for.
        virt: u64,
    },
    /// The physical address is not 4 KiB-aligned.
    PhysUnaligned {
        /// The address asked for.
        phys: PhysAddr,
    },
    /// The length is not a multiple of 4 KiB.
    LenUnaligned {
        /// The length asked for.
        len: u64,
    },
    /// The flags hold bits outside [`LEAF_FLAGS`](super::LEAF_FLAGS).
    UnsupportedFlags {
        /// The bits not allowed.
        flags: PageTableFlags,
    },
    /// The mapping asks for PAT ([`PAT_4K`](super::PAT_4K)) but allows
    /// large pages, which never carry PAT in baton.
    PatOnLargePages,
    /// The range holds a non-canonical address.
    NonCanonical {
        /// The first non-canonical address of the range.
        virt: u64,
    },
    /// The range runs past 2^64.
    Wraps {
        /// The start of the range.
        virt: u64,
        /// Its length.
        len: u64,
    },
    /// The physical range runs past the 52-bit limit.
    PhysOutOfRange {
        /// The start of the physical range.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// The range meets an address that is already mapped.
    Overlap {
        /// The first address of the range found mapped.
        virt: u64,
    },
    /// A leaf is needed here but the entry holds a table that maps nothing
    /// in the range (left empty by a failed map), or a non-present value.
    NotEmpty {
        /// The first address the entry spans.
        virt: u64,
        /// The level of the table holding the entry (1 = page table).
        level: u8,
    },
    /// A table is needed here but the entry holds something else that maps
    /// nothing: a non-present value, a large-page bit at a level without
    /// large pages, or a table entry with other permissions than the
    /// builder's (user, read-only or no-execute).
    NotATable {
        /// The first address of the range under the entry.
        virt: u64,
        /// The level of the table holding the entry (1 = page table).
        level: u8,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::OutOfFrames => write!(f, "out of frames for page tables"),
            BuildError::ZeroLength => write!(f, "zero-length mapping"),
            BuildError::VirtUnaligned { virt } => {
                write!(f, "virtual address {virt:#x} is not 4 KiB-aligned")
            }
            BuildError::PhysUnaligned { phys } => {
                write!(
                    f,
                    "physical address {:#x} is not 4 KiB-aligned",
                    phys.as_u64()
                )
            }
            BuildError::LenUnaligned { len } => {
                write!(f, "length {len:#x} is not a multiple of 4 KiB")
            }
            BuildError::UnsupportedFlags { flags } => write!(f, "unsupported leaf flags {flags:?}"),
            BuildError::PatOnLargePages => {
                write!(f, "PAT asked for on a mapping that allows large pages")
            }
            BuildError::NonCanonical { virt } => write!(f, "non-canonical address {virt:#x}"),
            BuildError::Wraps { virt, len } => write!(f, "{virt:#x} + {len:#x} wraps past 2^64"),
            BuildError::PhysOutOfRange { phys, len } => {
                write!(
                    f,
                    "{:#x} + {len:#x} runs past the 52-bit physical limit",
                    phys.as_u64()
                )
            }
            BuildError::Overlap { virt } => write!(f, "{virt:#x} is already mapped"),
            BuildError::NotEmpty { virt, level } => {
                write!(
                    f,
                    "level-{level} entry for {virt:#x} must take a leaf but is in use"
                )
            }
            BuildError::NotATable { virt, level } => {
                write!(
                    f,
                    "level-{level} entry for {virt:#x} must lead to a table but does not"
                )
            }
        }
    }
}

impl core::error::Error for BuildError {}

/// Builds page tables in frames from `F`, written through `W`.
///
/// On an error the tables keep whatever the failed [`map`](Self::map) had
/// written; at boot an error is fatal anyway.
pub struct Builder<'a, W: PhysWindow + ?Sized, F: FrameSource + ?Sized> {
    window: &'a mut W,
    frames: &'a mut F,
    levels: Levels,
    root: PhysFrame,
    tables: TableCount,
    leaves: LeafCount,
}

impl<W: PhysWindow + ?Sized, F: FrameSource + ?Sized> fmt::Debug for Builder<'_, W, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("levels", &self.levels)
            .field("root", &self.root)
            .field("tables", &self.tables)
            .field("leaves", &self.leaves)
            .finish_non_exhaustive()
    }
}

/// A stretch of a mapping: `len` bytes from `virt` to `phys`.
#[derive(Clone, Copy)]
struct Range {
    virt: u64,
    phys: u64,
    len: u64,
}

/// What one [`Builder::map`] writes into every leaf.
#[derive(Clone, Copy)]
struct LeafTemplate {
    /// `PRESENT` and the mapping's flags.
    flags: PageTableFlags,
    /// The highest level a leaf may sit at (the mapping's `max_page`).
    max_level: u8,
}

/// What [`Builder::fill`] takes of `mapping`: the range and the leaves'
/// template.
fn parts(mapping: &Mapping) -> (Range, LeafTemplate) {
    let range = Range {
        virt: mapping.virt,
        phys: mapping.phys.as_u64(),
        len: mapping.len,
    };
    let leaves = LeafTemplate {
        flags: mapping.flags | PageTableFlags::PRESENT,
        max_level: mapping.max_page.level(),
    };
    (range, leaves)
}

impl<'a, W: PhysWindow + ?Sized, F: FrameSource + ?Sized> Builder<'a, W, F> {
    /// Starts empty tables: allocates and clears the root.
    pub fn new(window: &'a mut W, frames: &'a mut F, levels: Levels) -> Result<Self, BuildError> {
        let root = frames.allocate_frame().ok_or(BuildError::OutOfFrames)?;
        window.table_mut(root).zero();
        let mut tables = TableCount::default();
        tables.add(levels.count() as u8, 1);
        Ok(Builder {
            window,
            frames,
            levels,
            root,
            tables,
            leaves: LeafCount::default(),
        })
    }

    /// Continues tables that exist already (built by a `Builder`, say, and
    /// now live): maps into them without allocating a new root. The counts
    /// start at zero and cover only what this builder adds.
    pub fn on_root(window: &'a mut W, frames: &'a mut F, levels: Levels, root: PhysFrame) -> Self {
        Builder {
            window,
            frames,
            levels,
            root,
            tables: TableCount::default(),
            leaves: LeafCount::default(),
        }
    }

    /// The root table, for CR3.
    pub fn root(&self) -> PhysFrame {
        self.root
    }

    /// The paging mode the tables are for.
    pub fn levels(&self) -> Levels {
        self.levels
    }

    /// The tables this builder allocated, per level (the root included).
    pub fn tables_allocated(&self) -> TableCount {
        self.tables
    }

    /// The leaves this builder wrote, per size.
    pub fn leaves_written(&self) -> LeafCount {
        self.leaves
    }

    /// A walker over the tables built so far.
    pub fn walker(&self) -> Walker<'_, W> {
        Walker::new(&*self.window, self.root, self.levels)
    }

    /// Maps `mapping` with the leaves [`largest_pages`] plans, allocating
    /// only the tables those leaves need.
    ///
    /// [`largest_pages`]: super::largest_pages
    pub fn map(&mut self, mapping: &Mapping) -> Result<(), BuildError> {
        mapping.check(self.levels)?;
        let (range, leaves) = parts(mapping);
        let top = self.levels.count() as u8;
        self.fill(self.root, top, range, leaves, false)
    }

    /// The level-`level` table (below the root) whose span holds `virt`,
    /// with every table on the way from the root, made empty where missing.
    /// For a region of the address space that one owner fills later with
    /// [`map_under`](Self::map_under), never touching the tables above.
    pub fn table_for(&mut self, virt: u64, level: u8) -> Result<PhysFrame, BuildError> {
        let top = self.levels.count() as u8;
        assert!((1..top).contains(&level), "a level below the root");
        if !self.levels.is_canonical(virt) {
            return Err(BuildError::NonCanonical { virt });
        }
        let mut table = self.root;
        for l in (level + 1..=top).rev() {
            let i = index(virt, l);
            let (child, fresh) = self.child(table, l, i, virt, false)?;
            if fresh {
                self.window.table_mut(child).zero();
                self.link(table, l, i, child);
            }
            table = child;
        }
        Ok(table)
    }

    /// Publishes `child`, a new table every entry of which is written, as
    /// entry `i` of the level-`level` `table`, and counts it. Only now: the
    /// CPU's page walker (on any CPU, even speculatively) must never see a
    /// half-built table.
    fn link(&mut self, table: PhysFrame, level: u8, i: usize, child: PhysFrame) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        self.window.table_mut(table)[i].set_frame(child, TABLE_FLAGS);
        self.tables.add(level - 1, 1);
    }

    /// Maps `mapping`, which lies in the span of `table`, the level-`level`
    /// table that [`table_for`](Self::table_for) gave for its addresses.
    /// Reads and writes nothing above `table`.
    ///
    /// # Panics
    ///
    /// If the mapping leaves the span of a level-`level` table.
    pub fn map_under(
        &mut self,
        table: PhysFrame,
        level: u8,
        mapping: &Mapping,
    ) -> Result<(), BuildError> {
        mapping.check(self.levels)?;
        let span_mask = !((1u64 << (entry_shift(level) + 9)) - 1);
        let last = mapping.virt + (mapping.len - 1);
        assert_eq!(
            mapping.virt & span_mask,
            last & span_mask,
            "the mapping stays under one table"
        );
        let (range, leaves) = parts(mapping);
        self.fill(table, level, range, leaves, false)
    }

    /// Maps `range`, which lies inside the span of the level-`level` table
    /// `table`.
    ///
    /// A `fresh` table was just allocated and holds garbage. Every entry the
    /// range touches is about to be written, so only the others are
    /// cleared, and nothing is checked for overlap: one pass over the
    /// table, not three. If an error cuts the fill short, the entries not
    /// reached are cleared too.
    fn fill(
        &mut self,
        table: PhysFrame,
        level: u8,
        range: Range,
        leaves: LeafTemplate,
        fresh: bool,
    ) -> Result<(), BuildError> {
        let first = index(range.virt, level);
        let last = index(range.virt.wrapping_add(range.len - 1), level);
        if !fresh {
            return self
                .fill_entries(table, level, range, leaves, false)
                .map_err(|(err, _)| err);
        }
        let entries = self.window.table_mut(table);
        for entry in entries.iter_mut().take(first) {
            entry.set_unused();
        }
        for entry in entries.iter_mut().skip(last + 1) {
            entry.set_unused();
        }
        self.fill_entries(table, level, range, leaves, true)
            .map_err(|(err, unwritten)| {
                let entries = self.window.table_mut(table);
                for entry in entries.iter_mut().take(last + 1).skip(unwritten) {
                    entry.set_unused();
                }
                err
            })
    }

    /// The loop of [`fill`](Self::fill). On an error, also returns the first
    /// entry of the range it has not written.
    fn fill_entries(
        &mut self,
        table: PhysFrame,
        level: u8,
        mut range: Range,
        leaves: LeafTemplate,
        fresh: bool,
    ) -> Result<(), (BuildError, usize)> {
        let shift = entry_shift(level);
        let span = 1u64 << shift;
        while range.len > 0 {
            let first = index(range.virt, level);
            let offset = range.virt & (span - 1);
            let bytes = if level <= leaves.max_level
                && offset == 0
                && range.phys & (span - 1) == 0
                && range.len >= span
            {
                // Whole entries from here on take leaves: as many as the
                // range and this table hold, in one go.
                let count = (range.len >> shift).min((512 - first) as u64) as usize;
                if let Err(free) =
                    self.write_leaves(table, level, first, count, range.phys, leaves.flags, fresh)
                {
                    let at = range.virt.wrapping_add((free as u64) << shift);
                    return Err((self.leaf_conflict(table, level, first + free, at), first));
                }
                (count as u64) << shift
            } else {
                let chunk = (span - offset).min(range.len);
                let (child, child_fresh) = self
                    .child(table, level, first, range.virt, fresh)
                    .map_err(|err| (err, first))?;
                let below = Range {
                    len: chunk,
                    ..range
                };
                if let Err(err) = self.fill(child, level - 1, below, leaves, child_fresh) {
                    // A fresh child was never linked: nothing points to it.
                    return Err((err, if child_fresh { first } else { first + 1 }));
                }
                if child_fresh {
                    self.link(table, level, first, child);
                }
                chunk
            };
            range.virt = range.virt.wrapping_add(bytes);
            range.phys += bytes;
            range.len -= bytes;
        }
        Ok(())
    }

    /// Writes `count` leaves into entries `first..` of `table`, the first
    /// mapping `phys`. Unless the table is `fresh`, writes nothing if one of
    /// the entries is in use, and returns how many entries before it are
    /// free.
    #[expect(
        clippy::too_many_arguments,
        reason = "the hot loop's state, kept in registers"
    )]
    fn write_leaves(
        &mut self,
        table: PhysFrame,
        level: u8,
        first: usize,
        count: usize,
        phys: u64,
        flags: PageTableFlags,
        fresh: bool,
    ) -> Result<(), usize> {
        let entries = self.window.table_mut(table);
        let run = first..first + count;
        // Check, then write: two branch-free loops over a range known to be
        // in bounds, which the compiler vectorizes, rather than one with a
        // test per entry.
        assert!(run.end <= 512, "a run stays inside its table");
        let in_use = !fresh
            && run
                .clone()
                .fold(false, |in_use, i| in_use | !entries[i].is_unused());
        if in_use {
            let free = run.take_while(|&i| entries[i].is_unused()).count();
            return Err(free);
        }
        let size = PageSize::at_level(level).expect("leaves only at levels 1 to 3");
        let huge = flags | PageTableFlags::HUGE_PAGE;
        match size {
            PageSize::Size4K => {
                write_run::<{ PageSize::Size4K.bytes() }>(entries, run, phys, flags)
            }
            PageSize::Size2M => write_run::<{ PageSize::Size2M.bytes() }>(entries, run, phys, huge),
            PageSize::Size1G => write_run::<{ PageSize::Size1G.bytes() }>(entries, run, phys, huge),
        }
        self.leaves.add(size, count as u64);
        Ok(())
    }

    /// The lower table behind entry `i` of `table`, allocated if the entry
    /// is empty (or the table `fresh`), and whether it is new. A new table
    /// is not linked into `table` yet: the caller links it once it is
    /// filled. `virt` is the first address of the range under the entry.
    fn child(
        &mut self,
        table: PhysFrame,
        level: u8,
        i: usize,
        virt: u64,
        fresh: bool,
    ) -> Result<(PhysFrame, bool), BuildError> {
        let entry = if fresh {
            Entry::Empty
        } else {
            classify(&self.window.table(table)[i], level)
        };
        match entry {
            Entry::Empty => {
                // Not linked yet: the caller fills it completely first.
                let frame = self
                    .frames
                    .allocate_frame()
                    .ok_or(BuildError::OutOfFrames)?;
                Ok((frame, true))
            }
            Entry::Table(frame, flags) if own_table(flags) => Ok((frame, false)),
            // The leaf spans the whole entry, so it maps `virt` already.
            Entry::Leaf { .. } => Err(BuildError::Overlap { virt }),
            Entry::Table(..) | Entry::Other => Err(BuildError::NotATable { virt, level }),
        }
    }

    /// Why entry `i` of `table`, spanning from `virt`, cannot take a leaf.
    fn leaf_conflict(&self, table: PhysFrame, level: u8, i: usize, virt: u64) -> BuildError {
        match classify(&self.window.table(table)[i], level) {
            Entry::Leaf { .. } => BuildError::Overlap { virt },
            Entry::Table(..) => {
                // The leaf would span the whole entry, all of it inside the
                // range: name the first address mapped below it.
                let end = virt.wrapping_add(1 << entry_shift(level));
                match self.walker().leaves_in(virt, end).next() {
                    Some(leaf) => BuildError::Overlap {
                        virt: leaf.virt.max(virt),
                    },
                    None => BuildError::NotEmpty { virt, level },
                }
            }
            Entry::Empty | Entry::Other => BuildError::NotEmpty { virt, level },
        }
    }
}

/// Fills entries `run` of `table` with leaves of `SIZE` bytes from `phys`
/// (aligned to `SIZE`). A constant step lets the compiler see that every
/// address stays aligned, drop `set_addr`'s check and vectorize the loop.
fn write_run<const SIZE: u64>(
    table: &mut PageTable,
    run: core::ops::Range<usize>,
    phys: u64,
    flags: PageTableFlags,
) {
    let mut addr = phys & !(SIZE - 1);
    for i in run {
        table[i].set_addr(PhysAddr::new_truncate(addr), flags);
        addr += SIZE;
    }
}

/// Whether a table entry has the permissions the builder gives its own, so
/// that leaves below it keep theirs.
fn own_table(flags: PageTableFlags) -> bool {
    flags.contains(TABLE_FLAGS)
        && !flags.intersects(PageTableFlags::USER_ACCESSIBLE | PageTableFlags::NO_EXECUTE)
}
