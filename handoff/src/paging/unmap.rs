//! Unmapping: clearing a range of live tables, reporting every leaf removed
//! (for TLB invalidation) and every table left empty (to free its frame).
//!
//! The unmapper walks only the tables that span the range, like the
//! builder: one pass per table, recursing where an entry points to a lower
//! table. It never splits a large page: a range that would cut one is
//! refused before anything is written, so an error leaves the tables as they
//! were.
//!
//! The order of the callbacks is part of the contract. Every leaf below a
//! table is reported before that table is: a kernel that invalidates each
//! leaf as it is reported (`invlpg` also drops the paging-structure caches)
//! has flushed everything that could still reach a table by the time it is
//! asked to free it.

use core::fmt;

use x86_64::structures::paging::{PageTable, PhysFrame};

use super::pages::{Entry, LeafCount, PageSize, TableCount, classify, entry_shift, index};
use super::walker::{Leaf, Walker};
use crate::phys::PhysWindow;
use crate::{Levels, PAGE_SIZE};

/// Why a range could not be unmapped. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmapError {
    /// The range has length zero.
    ZeroLength,
    /// The start is not 4 KiB-aligned.
    VirtUnaligned {
        /// The address asked for.
        virt: u64,
    },
    /// The length is not a multiple of 4 KiB.
    LenUnaligned {
        /// The length asked for.
        len: u64,
    },
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
    /// An edge of the range falls inside a large page, which the unmapper
    /// does not split.
    SplitNeeded {
        /// The first address of the large page.
        virt: u64,
        /// Its size.
        size: PageSize,
    },
}

impl fmt::Display for UnmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UnmapError::ZeroLength => write!(f, "zero-length unmap"),
            UnmapError::VirtUnaligned { virt } => {
                write!(f, "virtual address {virt:#x} is not 4 KiB-aligned")
            }
            UnmapError::LenUnaligned { len } => {
                write!(f, "length {len:#x} is not a multiple of 4 KiB")
            }
            UnmapError::NonCanonical { virt } => write!(f, "non-canonical address {virt:#x}"),
            UnmapError::Wraps { virt, len } => write!(f, "{virt:#x} + {len:#x} wraps past 2^64"),
            UnmapError::SplitNeeded { virt, size } => write!(
                f,
                "unmapping would split the {size} page at {virt:#x}, which is not supported"
            ),
        }
    }
}

impl core::error::Error for UnmapError {}

/// What an unmap removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Unmapped {
    /// The leaves cleared, per size.
    pub leaves: LeafCount,
    /// The tables freed because they became empty, per level.
    pub tables: TableCount,
}

/// Removes mappings from the tables under one root.
pub struct Unmapper<'a, W: PhysWindow + ?Sized> {
    window: &'a mut W,
    root: PhysFrame,
    levels: Levels,
}

impl<W: PhysWindow + ?Sized> fmt::Debug for Unmapper<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unmapper")
            .field("root", &self.root)
            .field("levels", &self.levels)
            .finish_non_exhaustive()
    }
}

/// The callbacks of one unmap and what it has removed so far.
struct Sink<L, T> {
    on_leaf: L,
    free_table: T,
    done: Unmapped,
}

impl<'a, W: PhysWindow + ?Sized> Unmapper<'a, W> {
    /// An unmapper over the tables under `root`, reached through `window`.
    pub fn new(window: &'a mut W, root: PhysFrame, levels: Levels) -> Self {
        Unmapper {
            window,
            root,
            levels,
        }
    }

    /// A walker over the tables as they are now.
    pub fn walker(&self) -> Walker<'_, W> {
        Walker::new(&*self.window, self.root, self.levels)
    }

    /// Unmaps `[virt, virt + len)`.
    ///
    /// Calls `on_leaf` for every leaf cleared, in address order (the kernel
    /// invalidates `leaf.virt`: one `invlpg` covers a large page), and
    /// `free_table(frame, level)` for every table left without a single
    /// non-zero entry, after the leaves below it; its entry in the parent
    /// is cleared first. The root is never freed. Parts of the range that
    /// map nothing are skipped, and entries in the range that are non-zero
    /// but map nothing (not present) are cleared without a report.
    ///
    /// # Errors
    ///
    /// A range that is empty, unaligned, not canonical or wrapping, and
    /// [`UnmapError::SplitNeeded`] if a large page crosses either edge. On
    /// an error nothing has been changed.
    pub fn unmap(
        &mut self,
        virt: u64,
        len: u64,
        on_leaf: impl FnMut(&Leaf),
        free_table: impl FnMut(PhysFrame, u8),
    ) -> Result<Unmapped, UnmapError> {
        let last = self.check(virt, len)?;
        let mut sink = Sink {
            on_leaf,
            free_table,
            done: Unmapped::default(),
        };
        let top = self.levels.count() as u8;
        self.clear(self.root, top, virt, last, &mut sink);
        Ok(sink.done)
    }

    /// Checks the range and returns its last address.
    fn check(&self, virt: u64, len: u64) -> Result<u64, UnmapError> {
        if len == 0 {
            return Err(UnmapError::ZeroLength);
        }
        if !virt.is_multiple_of(PAGE_SIZE) {
            return Err(UnmapError::VirtUnaligned { virt });
        }
        if !len.is_multiple_of(PAGE_SIZE) {
            return Err(UnmapError::LenUnaligned { len });
        }
        if !self.levels.is_canonical(virt) {
            return Err(UnmapError::NonCanonical { virt });
        }
        let Some(last) = virt.checked_add(len - 1) else {
            return Err(UnmapError::Wraps { virt, len });
        };
        let hole = 1u64 << (self.levels.va_bits() - 1);
        if virt < hole && last >= hole {
            return Err(UnmapError::NonCanonical { virt: hole });
        }
        // Only the leaves holding the two edges can stick out of the range.
        let walker = self.walker();
        for (at, inside) in [(virt, true), (last, false)] {
            if let Some(t) = walker.translate(at) {
                let leaf = t.leaf;
                let leaf_last = leaf.virt + (leaf.size.bytes() - 1);
                let sticks_out = if inside {
                    leaf.virt < virt
                } else {
                    leaf_last > last
                };
                if sticks_out {
                    return Err(UnmapError::SplitNeeded {
                        virt: leaf.virt,
                        size: leaf.size,
                    });
                }
            }
        }
        Ok(last)
    }

    /// Clears `lo..=hi`, which lies inside the span of the level-`level`
    /// table `table`. Returns whether the table is empty afterwards.
    fn clear<L, T>(
        &mut self,
        table: PhysFrame,
        level: u8,
        lo: u64,
        hi: u64,
        sink: &mut Sink<L, T>,
    ) -> bool
    where
        L: FnMut(&Leaf),
        T: FnMut(PhysFrame, u8),
    {
        let shift = entry_shift(level);
        let span_mask = (1u64 << shift) - 1;
        let first = index(lo, level);
        let last = index(hi, level);
        // The first address entry `first` spans. `lo` is canonical and the
        // range stays in one half, so stepping up from it by whole entries
        // keeps the sign-extension bits.
        let first_base = lo & !span_mask;
        for i in first..=last {
            let base = first_base.wrapping_add(((i - first) as u64) << shift);
            match classify(&self.window.table(table)[i], level) {
                Entry::Empty => {}
                Entry::Leaf { phys, size, flags } => {
                    self.window.table_mut(table)[i].set_unused();
                    sink.done.leaves.add(size, 1);
                    (sink.on_leaf)(&Leaf {
                        virt: base,
                        phys,
                        size,
                        flags,
                        level,
                    });
                }
                Entry::Table(child, _) => {
                    let below_lo = lo.max(base);
                    let below_hi = hi.min(base + span_mask);
                    if self.clear(child, level - 1, below_lo, below_hi, sink) {
                        self.window.table_mut(table)[i].set_unused();
                        sink.done.tables.add(level - 1, 1);
                        (sink.free_table)(child, level - 1);
                    }
                }
                Entry::Other => self.window.table_mut(table)[i].set_unused(),
            }
        }
        is_empty(self.window.table(table))
    }
}

/// Whether every entry of `table` is zero.
fn is_empty(table: &PageTable) -> bool {
    table.iter().all(|entry| entry.is_unused())
}

#[cfg(test)]
mod tests;
