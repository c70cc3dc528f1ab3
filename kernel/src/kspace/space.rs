//! One address space: a root table and the paging mode, its tables reached
//! through the physmap. The kernel's is one instance
//! ([`super::KernelSpace`]); the temporary space SetVirtualAddressMap runs
//! in is another, sharing the kernel's upper half.

use core::borrow::Borrow;
use core::fmt;
use core::ops::Range;

use handoff::Levels;
use handoff::paging::{
    BuildError, Builder, Mapping, Translation, UnmapError, Unmapped, Unmapper, Walker, WxRange,
    WxSummary,
};
use handoff::phys::{FrameSource, PhysWindow};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::direct::DirectMap;

/// The first top-level entry of the upper half.
const UPPER_HALF: usize = 256;

/// Page tables under one root.
pub struct AddressSpace {
    root: PhysFrame,
    levels: Levels,
    /// A range of the upper half this space does not share with the one
    /// it was made from (see [`AddressSpace::sharing_upper_half_except`]).
    private: Option<Range<u64>>,
    /// Where the tables are read.
    window: DirectMap,
    /// The same window for writing: every change to this space's tables
    /// goes through this lock.
    writer: spin::Mutex<DirectMap>,
}

impl fmt::Debug for AddressSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressSpace")
            .field("root", &self.root.start_address())
            .field("levels", &self.levels)
            .finish_non_exhaustive()
    }
}

/// The tables of a region one owner maps in ([`AddressSpace::own_region`]).
pub struct OwnedRegion {
    window: DirectMap,
    levels: Levels,
    root: PhysFrame,
    /// The level of the tables below the root.
    level: u8,
    /// `(first address spanned, table)` per top-level entry of the region.
    tables: [(u64, PhysFrame); 2],
    len: usize,
    start: u64,
    end: u64,
}

impl fmt::Debug for OwnedRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedRegion")
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl OwnedRegion {
    /// The table below the root that spans `va`.
    fn table(&self, va: u64) -> PhysFrame {
        assert!(
            (self.start..self.end).contains(&va),
            "{va:#x} is outside the owned region {:#x}-{:#x}",
            self.start,
            self.end
        );
        let span = 1u64 << (12 + 9 * u32::from(self.level));
        self.tables[..self.len]
            .iter()
            .find(|&&(first, _)| va & !(span - 1) == first)
            .expect("every table of the region was made")
            .1
    }

    /// Whether `va`, in the region, is mapped.
    pub fn is_mapped(&self, va: u64) -> bool {
        Walker::new(&self.window, self.root, self.levels)
            .translate_under(self.table(va), self.level, va)
            .is_some()
    }

    /// Maps `mapping`, which lies in the region under one of its tables,
    /// new tables from `frames`.
    pub fn map<F: FrameSource + ?Sized>(
        &mut self,
        frames: &mut F,
        mapping: &Mapping,
    ) -> Result<(), BuildError> {
        let table = self.table(mapping.virt);
        Builder::on_root(&mut self.window, frames, self.levels, self.root)
            .map_under(table, self.level, mapping)
    }
}

/// No frame was left for a new root table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFrame;

impl AddressSpace {
    /// The space rooted at `root`, its tables reached through `window`
    /// (the physmap, which maps every page table: they are RAM).
    pub(super) fn new(root: PhysFrame, levels: Levels, window: &DirectMap) -> Self {
        // SAFETY: `window` reads; every write goes through `writer`, under
        // its lock.
        let (window, writer) = unsafe { (window.duplicate(), window.duplicate()) };
        Self {
            root,
            levels,
            private: None,
            window,
            writer: spin::Mutex::new(writer),
        }
    }

    /// The root table (PML4 or PML5), what CR3 holds while it is live.
    pub fn root(&self) -> PhysFrame {
        self.root
    }

    /// The paging mode.
    pub fn levels(&self) -> Levels {
        self.levels
    }

    /// Whether this CPU runs on this space now.
    pub fn is_live(&self) -> bool {
        Cr3::read().0 == self.root
    }

    /// A walker over the tables (leaves, translation, statistics, ptdump).
    pub fn walker(&self) -> Walker<'_, DirectMap> {
        Walker::new(&self.window, self.root, self.levels)
    }

    /// Where `va` leads, if it is mapped.
    pub fn translate(&self, va: u64) -> Option<Translation> {
        self.walker().translate(va)
    }

    /// Linux's W^X check over every leaf; `report` sees each offending
    /// range.
    pub fn check_wx(&self, report: impl FnMut(&WxRange)) -> WxSummary {
        self.walker().check_wx(report)
    }

    /// Maps every mapping of `mappings`, new tables from `frames`, and
    /// stops at the first failure (tables already linked stay).
    pub fn map<F: FrameSource + ?Sized, M: Borrow<Mapping>>(
        &self,
        frames: &mut F,
        mappings: impl IntoIterator<Item = M>,
    ) -> Result<(), BuildError> {
        let mut window = self.writer.lock();
        let mut builder = Builder::on_root(&mut *window, frames, self.levels, self.root);
        mappings
            .into_iter()
            .try_for_each(|m| builder.map(m.borrow()))
    }

    /// Unmaps `[virt, virt + len)`: `on_leaf` sees each leaf removed (the
    /// caller invalidates TLBs), `free_table` each table emptied (its level
    /// as the second argument).
    pub fn unmap(
        &self,
        virt: u64,
        len: u64,
        on_leaf: impl FnMut(&handoff::paging::Leaf),
        free_table: impl FnMut(PhysFrame, u8),
    ) -> Result<Unmapped, UnmapError> {
        let mut window = self.writer.lock();
        Unmapper::new(&mut *window, self.root, self.levels).unmap(virt, len, on_leaf, free_table)
    }

    /// Makes `[start, end)`, a region of the upper half, `owner`'s: the
    /// tables one level below the root that span it are made now, under
    /// this space's lock (new ones from `frames`); from then on the owner
    /// maps there through the returned [`OwnedRegion`], without that lock,
    /// and nothing else may map there. For a region mapped on demand from
    /// under a lock the space's mappers take too: the vmemmap, which the
    /// frame allocator backs.
    pub fn own_region<F: FrameSource + ?Sized>(
        &self,
        start: u64,
        end: u64,
        frames: &mut F,
    ) -> Result<OwnedRegion, BuildError> {
        let level = self.levels.count() as u8 - 1;
        let span = 1u64 << (12 + 9 * u32::from(level));
        // SAFETY: the region's owner writes only the tables below the
        // region's own top-level entries, which the space's writer never
        // touches once the region is handed out.
        let window = unsafe { self.window.duplicate() };
        let mut region = OwnedRegion {
            window,
            levels: self.levels,
            root: self.root,
            level,
            tables: [(0, self.root); 2],
            len: 0,
            start,
            end,
        };
        let mut window = self.writer.lock();
        let mut builder = Builder::on_root(&mut *window, frames, self.levels, self.root);
        let mut at = start & !(span - 1);
        while at < end {
            let table = builder.table_for(at, level)?;
            assert!(
                region.len < region.tables.len(),
                "a region spans two entries at most"
            );
            region.tables[region.len] = (at, table);
            region.len += 1;
            at = at.wrapping_add(span);
            if at == 0 {
                break;
            }
        }
        Ok(region)
    }

    /// A new space whose upper half is this one's (the same tables, so
    /// kernel mappings made later show in both below the top level) and
    /// whose lower half is empty, its root from `frames`.
    pub fn sharing_upper_half<F: FrameSource + ?Sized>(
        &self,
        frames: &mut F,
    ) -> Result<AddressSpace, NoFrame> {
        let root = frames.allocate_frame().ok_or(NoFrame)?;
        let mut window = self.writer.lock();
        let upper = window.table(self.root).clone();
        let new = window.table_mut(root);
        new.zero();
        for i in UPPER_HALF..512 {
            new[i] = upper[i].clone();
        }
        Ok(AddressSpace::new(root, self.levels, &window))
    }

    /// Like [`sharing_upper_half`](Self::sharing_upper_half), except for
    /// `private`: a range of the upper half inside one top-level entry,
    /// covering whole entries at some level. The tables on the way to it
    /// are the new space's own copies, so that what is mapped in `private`
    /// exists in the new space only (Linux's `efi_mm` and its EFI region);
    /// everything else in them is shared, and [`sync_from`](Self::sync_from)
    /// brings later changes over.
    pub fn sharing_upper_half_except<F: FrameSource + ?Sized>(
        &self,
        private: Range<u64>,
        frames: &mut F,
    ) -> Result<AddressSpace, NoFrame> {
        let mut space = self.sharing_upper_half(frames)?;
        let mut window = space.writer.lock();
        let (mut own, mut theirs) = (space.root, Some(self.root));
        for level in (private_level(&private, self.levels) + 1..=self.levels.count()).rev() {
            let i = index(private.start, level);
            let copy = frames.allocate_frame().ok_or(NoFrame)?;
            let child = theirs.and_then(|t| child_of(&window, t, i));
            match child {
                Some(c) => {
                    let content = window.table(c).clone();
                    *window.table_mut(copy) = content;
                }
                None => window.table_mut(copy).zero(),
            }
            window.table_mut(own)[i].set_frame(copy, TABLE_FLAGS);
            (own, theirs) = (copy, child);
        }
        drop(window);
        space.private = Some(private);
        Ok(space)
    }

    /// Brings over what changed in `from`'s upper half since this space
    /// was made from it: every shared entry, on the way to the private
    /// range too (a runtime call must see, say, a new vmalloc stack).
    pub fn sync_from(&self, from: &AddressSpace) {
        let mut window = self.writer.lock();
        let private = self.private.clone().unwrap_or(0..0);
        let bottom = private_level(&private, self.levels);
        let (mut own, mut theirs) = (self.root, Some(from.root));
        let mut level = self.levels.count();
        while let Some(t) = theirs {
            let skip = |i: usize| {
                if self.private.is_none() || level < bottom {
                    false
                } else if level == bottom {
                    let span = 1u64 << (12 + 9 * (level - 1));
                    let va = self
                        .levels
                        .sign_extend((private.start & !((span << 9) - 1)) + i as u64 * span);
                    private.contains(&va)
                } else {
                    i == index(private.start, level)
                }
            };
            let first = if level == self.levels.count() {
                UPPER_HALF
            } else {
                0
            };
            let source = window.table(t).clone();
            for i in (first..512).filter(|&i| !skip(i)) {
                window.table_mut(own)[i] = source[i].clone();
            }
            if self.private.is_none() || level == bottom {
                break;
            }
            let i = index(private.start, level);
            own = child_of(&window, own, i).expect("the private path is the space's own");
            theirs = child_of(&window, t, i);
            level -= 1;
        }
    }

    /// Calls `visit` with the root and every table under the lower half:
    /// the tables that are this space's own when it shares its upper half.
    /// Stops (and returns false) when `visit` does.
    pub fn own_tables(&self, mut visit: impl FnMut(PhysFrame) -> bool) -> bool {
        visit(self.root)
            && self.tables_under(self.root, self.levels.count(), 0..UPPER_HALF, &mut visit)
    }

    fn tables_under(
        &self,
        table: PhysFrame,
        level: usize,
        entries: core::ops::Range<usize>,
        visit: &mut impl FnMut(PhysFrame) -> bool,
    ) -> bool {
        if level == 1 {
            return true;
        }
        let table = self.window.table(table);
        entries.into_iter().all(|i| {
            let flags = table[i].flags();
            if !flags.contains(PageTableFlags::PRESENT) || flags.contains(PageTableFlags::HUGE_PAGE)
            {
                return true;
            }
            let child = PhysFrame::containing_address(table[i].addr());
            visit(child) && self.tables_under(child, level - 1, 0..512, visit)
        })
    }

    /// Loads the space into CR3 on this CPU. Its non-global TLB entries of
    /// the previous space go; global ones stay (the upper half's).
    ///
    /// # Safety
    ///
    /// The space must map, as the current one does, the code running, its
    /// stack and everything it uses until it switches back.
    pub unsafe fn activate(&self) {
        // SAFETY: the caller guarantees that execution can go on.
        unsafe { Cr3::write(self.root, Cr3Flags::empty()) };
    }
}

/// The flags of an entry pointing to a lower table (leaves decide the
/// permissions), as handoff's builder writes them.
const TABLE_FLAGS: PageTableFlags = PageTableFlags::PRESENT.union(PageTableFlags::WRITABLE);

/// The index of `va`'s entry in a table at `level` (1 = page table).
fn index(va: u64, level: usize) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 511) as usize
}

/// The level at which `private` covers whole entries (3 for the EFI
/// window: 1 GiB entries), where the private path ends.
fn private_level(private: &Range<u64>, levels: Levels) -> usize {
    (1..=levels.count())
        .rev()
        .find(|&level| {
            let span = 1u64 << (12 + 9 * (level - 1));
            private.start.is_multiple_of(span) && (private.end - private.start).is_multiple_of(span)
        })
        .unwrap_or(1)
}

/// The table entry `i` of `table` points to, if present (not a leaf).
fn child_of(window: &DirectMap, table: PhysFrame, i: usize) -> Option<PhysFrame> {
    let entry = &window.table(table)[i];
    let flags = entry.flags();
    (flags.contains(PageTableFlags::PRESENT) && !flags.contains(PageTableFlags::HUGE_PAGE))
        .then(|| PhysFrame::containing_address(entry.addr()))
}
