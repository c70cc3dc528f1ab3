//! The normalised memory map: sorted, disjoint regions of one [`Kind`].

use core::fmt;
use core::ops::Range;

use uefi_raw::table::boot::MemoryAttribute;
use x86_64::PhysAddr;

use super::MAX_REGIONS;
use super::error::MapError;
use super::policy::{InEfiWindow, Kind, Policy};

/// A physical range of one kind.
///
/// The bounds are plain `u64` rather than `PhysAddr`: the exclusive end of
/// the last region may be `1 << 52`, which `PhysAddr` cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What the range holds.
    pub kind: Kind,
    /// The EFI attributes of the descriptor covering the range; `None` on a
    /// BIOS boot or where no EFI descriptor covers it.
    pub attr: Option<MemoryAttribute>,
}

impl Region {
    /// An empty region, for static arrays.
    pub const EMPTY: Region = Region {
        start: 0,
        end: 0,
        kind: Kind::Reserved,
        attr: None,
    };

    /// Its size in bytes.
    pub const fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Whether `addr` lies inside.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// How baton treats it.
    pub const fn policy(&self) -> Policy {
        self.kind.policy()
    }

    /// Whether the runtime services need it mapped in the EFI window: where
    /// the policy of its kind says [`InEfiWindow::IfAttribute`], the
    /// EFI_MEMORY_RUNTIME attribute decides, whatever the firmware type
    /// (runtime MMIO such as OVMF's flash included).
    pub fn is_efi_runtime(&self) -> bool {
        match self.kind.policy().runtime {
            InEfiWindow::IfAttribute => self
                .attr
                .is_some_and(|a| a.contains(MemoryAttribute::RUNTIME)),
            InEfiWindow::Never => false,
        }
    }
}

/// The normalised map: at most [`MAX_REGIONS`] sorted, disjoint regions, in
/// which neighbours that touch differ in kind or attributes.
///
/// It is large (tens of KiB): keep it in a `static` and fill it in place
/// with [`build`](super::build).
pub struct MemoryMap {
    regions: [Region; MAX_REGIONS],
    len: usize,
}

impl MemoryMap {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            regions: [Region::EMPTY; MAX_REGIONS],
            len: 0,
        }
    }

    /// The regions, sorted by address.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// The region holding `addr`, if any (holes have none).
    pub fn region_at(&self, addr: PhysAddr) -> Option<&Region> {
        let addr = addr.as_u64();
        let regions = self.regions();
        let i = regions.partition_point(|r| r.end <= addr);
        regions.get(i).filter(|r| r.contains(addr))
    }

    /// The first address of RAM in `[start, end)`, if any.
    pub fn first_ram_in(&self, start: u64, end: u64) -> Option<u64> {
        let regions = self.regions();
        let i = regions.partition_point(|r| r.end <= start);
        regions[i..]
            .iter()
            .take_while(|r| r.start < end)
            .find(|r| r.kind.is_ram())
            .map(|r| r.start.max(start))
    }

    /// The bytes of memory of `kind`.
    pub fn bytes(&self, kind: Kind) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind == kind)
            .map(Region::size)
            .sum()
    }

    /// The bytes of RAM (everything the physmap maps).
    pub fn ram_bytes(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind.is_ram())
            .map(Region::size)
            .sum()
    }

    /// The end of the highest RAM region: how much the physmap must span.
    pub fn ram_end(&self) -> u64 {
        self.regions()
            .iter()
            .rev()
            .find(|r| r.kind.is_ram())
            .map_or(0, |r| r.end)
    }

    /// The maximal runs of contiguous RAM, whatever its kinds: what the
    /// physmap maps.
    pub fn ram_runs(&self) -> RamRuns<'_> {
        RamRuns {
            regions: self.regions(),
        }
    }

    /// The regions the EFI runtime services need mapped.
    pub fn efi_runtime(&self) -> impl Iterator<Item = &Region> {
        self.regions().iter().filter(|r| r.is_efi_runtime())
    }

    /// Empties the map.
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `r`, which must start at or after the last region's end,
    /// merging it into the last region when they touch and match.
    pub(super) fn push(&mut self, r: Region) -> Result<(), MapError> {
        debug_assert!(r.start < r.end);
        if let Some(last) = self.regions[..self.len].last_mut() {
            debug_assert!(last.end <= r.start);
            if last.end == r.start && last.kind == r.kind && last.attr == r.attr {
                last.end = r.end;
                return Ok(());
            }
        }
        let slot = self
            .regions
            .get_mut(self.len)
            .ok_or(MapError::OutputFull { at: r.start })?;
        *slot = r;
        self.len += 1;
        Ok(())
    }
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.regions()).finish()
    }
}

impl fmt::Display for MemoryMap {
    /// One line per region: `0x000000100000-0x000007fe0000 Usable attr 0xf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.regions() {
            write!(f, "{:#014x}-{:#014x} {:?}", r.start, r.end, r.kind)?;
            if let Some(attr) = r.attr {
                write!(f, " attr {:#x}", attr.bits())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The maximal runs of contiguous RAM in a [`MemoryMap`].
#[derive(Debug, Clone)]
pub struct RamRuns<'a> {
    regions: &'a [Region],
}

impl Iterator for RamRuns<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        let first = self.regions.iter().position(|r| r.kind.is_ram())?;
        let mut run = self.regions[first].start..self.regions[first].end;
        let mut rest = &self.regions[first + 1..];
        while let Some((r, tail)) = rest.split_first() {
            if !(r.kind.is_ram() && r.start == run.end) {
                break;
            }
            run.end = r.end;
            rest = tail;
        }
        self.regions = rest;
        Some(run)
    }
}
