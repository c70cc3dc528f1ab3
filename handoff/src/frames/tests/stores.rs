//! Descriptor stores for the host: sparse, strict, and counting.
//!
//! [`Sparse`] backs descriptors a page (128 of them) at a time in host
//! memory, as the kernel backs the vmemmap, and fills a fresh page with
//! garbage rather than zeroes. It panics when the allocator reads a
//! descriptor it never wrote, or touches one of a frame that is not RAM
//! below the limit or whose page it never asked to back; it records every
//! descriptor written. [`Pooled`] is the same with the kernel's economy: a
//! page (and a page table for each new 2 MiB of vmemmap) costs a frame
//! from a reserve the allocator keeps topped up.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use x86_64::structures::paging::PhysFrame;

use super::super::desc::{
    DESC_SIZE, Descriptors, FrameDesc, GIB_RECORD_SIZE, GibRecord, NoBacking,
};
use crate::PAGE_SIZE;
use crate::memmap::MemoryMap;

/// Descriptors to a vmemmap page.
const PER_PAGE: u64 = PAGE_SIZE / DESC_SIZE;

/// Descriptors to a 2 MiB stretch of vmemmap (one page table).
const PER_TABLE: u64 = PER_PAGE * 512;

/// GiB records to a page.
const GIBS_PER_PAGE: u64 = PAGE_SIZE / GIB_RECORD_SIZE;

/// Frames to a GiB.
const GIB: u64 = 1 << 18;

/// Backed pages of descriptors, and what was written.
pub struct Sparse {
    /// The RAM runs below the limit (PFNs).
    ram: Vec<Range<u64>>,
    pages: BTreeMap<u64, Box<[FrameDesc; PER_PAGE as usize]>>,
    /// Backed pages of GiB records, garbage until written.
    gib_pages: BTreeMap<u64, Box<[GibRecord; GIBS_PER_PAGE as usize]>>,
    /// Every GiB whose record was written.
    pub gibs_written: BTreeSet<u64>,
    /// Every PFN whose descriptor was written (through `desc_mut` or
    /// `fill`).
    pub written: BTreeSet<u64>,
    /// Descriptors written through `fill`, counted.
    pub filled: u64,
}

impl Sparse {
    pub fn new(map: &MemoryMap, limit: u64) -> Sparse {
        let ram = map
            .ram_runs()
            .filter(|r| r.start < limit)
            .map(|r| r.start / PAGE_SIZE..r.end.min(limit) / PAGE_SIZE)
            .collect();
        Sparse {
            ram,
            pages: BTreeMap::new(),
            gib_pages: BTreeMap::new(),
            gibs_written: BTreeSet::new(),
            written: BTreeSet::new(),
            filled: 0,
        }
    }

    fn is_ram(&self, pfn: u64) -> bool {
        let i = self.ram.partition_point(|r| r.end <= pfn);
        self.ram.get(i).is_some_and(|r| r.start <= pfn)
    }

    /// Pages of descriptors and of GiB records backed so far.
    pub fn backed_pages(&self) -> u64 {
        (self.pages.len() + self.gib_pages.len()) as u64
    }

    /// Whether the GiB `gib` is all RAM below the limit.
    fn is_ram_gib(&self, gib: u64) -> bool {
        let i = self.ram.partition_point(|r| r.end <= gib * GIB);
        self.ram
            .get(i)
            .is_some_and(|r| r.start <= gib * GIB && r.end >= (gib + 1) * GIB)
    }

    /// Backs the record pages of `gibs`; returns the pages it added.
    fn add_gib_pages(&mut self, gibs: Range<u64>) -> Vec<u64> {
        let mut added = Vec::new();
        for gib in gibs.clone() {
            assert!(
                self.is_ram_gib(gib),
                "store: asked to back the record of GiB {gib:#x}, which is not all RAM"
            );
        }
        if gibs.is_empty() {
            return added;
        }
        for page in gibs.start / GIBS_PER_PAGE..=(gibs.end - 1) / GIBS_PER_PAGE {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.gib_pages.entry(page) {
                let garbage = GibRecord::free(0x5a5a);
                slot.insert(Box::new([garbage; GIBS_PER_PAGE as usize]));
                added.push(page);
            }
        }
        added
    }

    fn gib_slot(&self, gib: u64) -> (u64, usize) {
        assert!(
            self.is_ram_gib(gib),
            "store: record of GiB {gib:#x}, not all RAM"
        );
        let page = gib / GIBS_PER_PAGE;
        assert!(
            self.gib_pages.contains_key(&page),
            "store: record of GiB {gib:#x}, whose page was never backed"
        );
        (page, (gib % GIBS_PER_PAGE) as usize)
    }

    /// Whether `pfn`'s page is backed.
    pub fn is_backed(&self, pfn: u64) -> bool {
        self.pages.contains_key(&(pfn / PER_PAGE))
    }

    fn slot(&self, pfn: u64) -> (u64, usize) {
        assert!(
            self.is_ram(pfn),
            "store: descriptor of {:#x}, which is not RAM below the limit",
            pfn * PAGE_SIZE
        );
        let page = pfn / PER_PAGE;
        assert!(
            self.pages.contains_key(&page),
            "store: descriptor of {:#x}, whose page was never backed",
            pfn * PAGE_SIZE
        );
        (page, (pfn % PER_PAGE) as usize)
    }

    /// Backs the pages of `pfns`; returns the pages it added.
    fn add_pages(&mut self, pfns: Range<u64>) -> Vec<u64> {
        let mut added = Vec::new();
        for pfn in pfns.clone() {
            assert!(
                self.is_ram(pfn),
                "store: asked to back {:#x}, which is not RAM below the limit",
                pfn * PAGE_SIZE
            );
        }
        if pfns.is_empty() {
            return added;
        }
        for page in pfns.start / PER_PAGE..=(pfns.end - 1) / PER_PAGE {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.pages.entry(page) {
                slot.insert(Box::new([FrameDesc::GARBAGE; PER_PAGE as usize]));
                added.push(page);
            }
        }
        added
    }
}

impl Descriptors for Sparse {
    fn desc(&self, pfn: u64) -> &FrameDesc {
        let (page, i) = self.slot(pfn);
        assert!(
            self.written.contains(&pfn),
            "store: descriptor of {:#x} read before it was written",
            pfn * PAGE_SIZE
        );
        &self.pages[&page][i]
    }

    fn desc_mut(&mut self, pfn: u64) -> &mut FrameDesc {
        let (page, i) = self.slot(pfn);
        self.written.insert(pfn);
        &mut self.pages.get_mut(&page).expect("checked")[i]
    }

    fn fill(&mut self, pfns: Range<u64>, value: FrameDesc) {
        self.filled += pfns.end - pfns.start;
        for pfn in pfns {
            *self.desc_mut(pfn) = value;
        }
    }

    fn back(&mut self, pfns: Range<u64>) -> Result<(), NoBacking> {
        self.add_pages(pfns);
        Ok(())
    }

    fn gib(&self, gib: u64) -> &GibRecord {
        let (page, i) = self.gib_slot(gib);
        assert!(
            self.gibs_written.contains(&gib),
            "store: record of GiB {gib:#x} read before it was written"
        );
        &self.gib_pages[&page][i]
    }

    fn gib_mut(&mut self, gib: u64) -> &mut GibRecord {
        let (page, i) = self.gib_slot(gib);
        self.gibs_written.insert(gib);
        &mut self.gib_pages.get_mut(&page).expect("checked")[i]
    }

    fn back_gibs(&mut self, gibs: Range<u64>) -> Result<(), NoBacking> {
        self.add_gib_pages(gibs);
        Ok(())
    }
}

/// [`Sparse`], paying for each page and page table with a frame from its
/// reserve.
pub struct Pooled {
    pub inner: Sparse,
    reserve: Vec<u64>,
    target: usize,
    /// Each 2 MiB stretch of vmemmap given a page table.
    tables: BTreeSet<u64>,
    /// Every frame the store used, and every frame it ever received.
    pub used: BTreeSet<u64>,
    pub received: BTreeSet<u64>,
    /// Frames handed back as surplus.
    pub returned: BTreeSet<u64>,
}

impl Pooled {
    /// A store whose reserve starts as `reserve` (PFNs, reserved for the
    /// vmemmap by an exclusion) and is kept at `target` frames.
    pub fn new(map: &MemoryMap, limit: u64, reserve: Range<u64>, target: usize) -> Pooled {
        Pooled {
            inner: Sparse::new(map, limit),
            received: reserve.clone().collect(),
            reserve: reserve.rev().collect(),
            target,
            tables: BTreeSet::new(),
            used: BTreeSet::new(),
            returned: BTreeSet::new(),
        }
    }

    /// Frames in the reserve.
    pub fn reserve(&self) -> usize {
        self.reserve.len()
    }

    /// Whether the store holds `pfn`, in its reserve or backing something.
    pub fn holds(&self, pfn: u64) -> bool {
        self.used.contains(&pfn) || self.reserve.contains(&pfn)
    }

    fn take(&mut self, pfn: u64) -> Result<(), NoBacking> {
        let f = self.reserve.pop().ok_or(NoBacking { pfn })?;
        self.used.insert(f);
        Ok(())
    }

    /// Pays for a page at `table_key` (its 2 MiB stretch) if new.
    fn pay(&mut self, table_key: u64, pfn: u64) -> Result<(), NoBacking> {
        if !self.tables.contains(&table_key) {
            self.take(pfn)?;
            self.tables.insert(table_key);
        }
        self.take(pfn)
    }
}

impl Descriptors for Pooled {
    fn desc(&self, pfn: u64) -> &FrameDesc {
        self.inner.desc(pfn)
    }

    fn desc_mut(&mut self, pfn: u64) -> &mut FrameDesc {
        self.inner.desc_mut(pfn)
    }

    fn fill(&mut self, pfns: Range<u64>, value: FrameDesc) {
        self.inner.fill(pfns, value)
    }

    fn back(&mut self, pfns: Range<u64>) -> Result<(), NoBacking> {
        if pfns.is_empty() {
            return Ok(());
        }
        for page in pfns.start / PER_PAGE..=(pfns.end - 1) / PER_PAGE {
            let first = (page * PER_PAGE).max(pfns.start);
            if self.inner.is_backed(first) {
                continue;
            }
            self.pay(page * PER_PAGE / PER_TABLE, first)?;
            let last = ((page + 1) * PER_PAGE).min(pfns.end);
            self.inner.add_pages(first..last);
        }
        Ok(())
    }

    fn gib(&self, gib: u64) -> &GibRecord {
        self.inner.gib(gib)
    }

    fn gib_mut(&mut self, gib: u64) -> &mut GibRecord {
        self.inner.gib_mut(gib)
    }

    fn back_gibs(&mut self, gibs: Range<u64>) -> Result<(), NoBacking> {
        if gibs.is_empty() {
            return Ok(());
        }
        for page in gibs.start / GIBS_PER_PAGE..=(gibs.end - 1) / GIBS_PER_PAGE {
            if self.inner.gib_pages.contains_key(&page) {
                continue;
            }
            // Records live apart from the descriptors: their own tables.
            self.pay(u64::MAX - page / 512, gibs.start * GIB)?;
            let first = (page * GIBS_PER_PAGE).max(gibs.start);
            let last = ((page + 1) * GIBS_PER_PAGE).min(gibs.end);
            self.inner.add_gib_pages(first..last);
        }
        Ok(())
    }

    fn wants(&self) -> u64 {
        self.target.saturating_sub(self.reserve.len()) as u64
    }

    fn give(&mut self, f: PhysFrame) {
        let pfn = f.start_address().as_u64() / PAGE_SIZE;
        assert!(!self.holds(pfn), "{f:?} given to the store, which holds it");
        self.received.insert(pfn);
        self.reserve.push(pfn);
    }

    fn surplus(&mut self) -> Option<Range<u64>> {
        if self.reserve.len() <= self.target {
            return None;
        }
        // A run of the reserve at once, as the kernel's store gives it.
        let mut run = self.reserve.pop()?..0;
        run.end = run.start + 1;
        while self.reserve.len() > self.target && self.reserve.last() == Some(&run.end) {
            run.end = self.reserve.pop()? + 1;
        }
        self.returned.extend(run.clone());
        Some(run)
    }
}
