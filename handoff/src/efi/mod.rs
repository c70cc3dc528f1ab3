//! UEFI runtime services: where the runtime regions go in baton's address
//! space, the map handed to SetVirtualAddressMap, and the mappings that
//! carry them. Linux's method (arch/x86/platform/efi/efi_64.c):
//!
//! 1. every descriptor with `EFI_MEMORY_RUNTIME` is a runtime region;
//!    neighbours in the map that are physically contiguous and of equal
//!    type and attributes are merged;
//! 2. regions get virtual addresses in the EFI window top-down from
//!    [`Layout::efi_top_down_start`] (-4 GiB), each keeping its offset
//!    within 2 MiB so that large pages stay possible, walking the map in
//!    reverse so that later descriptors get higher addresses;
//! 3. SetVirtualAddressMap gets a copy of the runtime descriptors, stride
//!    `desc_size`, with `VirtualStart` filled in ([`rewrite_map`]);
//! 4. the window maps code read + execute and everything else read-write,
//!    no execute; runtime MMIO (the flash of pflash OVMF) uncached, the
//!    rest write-back where the firmware allows it, else uncached. When
//!    the firmware publishes an `EFI_MEMORY_ATTRIBUTES_TABLE`, its `RO`
//!    and `XP` bits refine that per section ([`Window::make`]).
//!
//! The firmware relocates itself during SetVirtualAddressMap through the
//! one-to-one mappings of a temporary address space ([`identity_mappings`]),
//! not through the window, so the window never needs to be writable and
//! executable at once.

use core::fmt;

use uefi_raw::table::boot::{MemoryAttribute, MemoryType};
use uefi_raw::{Guid, guid};
use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

use crate::PAGE_SIZE;
use crate::layout::Layout;
use crate::memmap::EfiMemoryMap;
pub use crate::memmap::decode_descriptor as descriptor;
use crate::memtype::{MemType, Mtrrs, Pat, effective_runs};
use crate::paging::{Mapping, PageSize};

pub mod pe;
pub mod services;
#[cfg(test)]
mod tests;

/// `EFI_MEMORY_ATTRIBUTES_TABLE_GUID`.
pub const MEMORY_ATTRIBUTES_TABLE_GUID: Guid = guid!("dcfa911d-26eb-469f-a220-38b7dc461220");

/// The most runtime regions baton maps (OVMF has about 20).
pub const MAX_RUNTIME_REGIONS: usize = 256;

/// The most window mappings (regions cut by the attributes table).
pub const MAX_MAPPINGS: usize = 1024;

const TWO_MIB: u64 = 2 << 20;

/// One runtime region: merged descriptors and its place in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeRegion {
    /// The physical start (page-aligned).
    pub phys: u64,
    /// The length in bytes.
    pub len: u64,
    /// The descriptors' type.
    pub ty: MemoryType,
    /// The descriptors' attributes.
    pub attr: MemoryAttribute,
    /// The virtual start in the EFI window.
    pub virt: u64,
}

impl RuntimeRegion {
    const EMPTY: RuntimeRegion = RuntimeRegion {
        phys: 0,
        len: 0,
        ty: MemoryType::RESERVED,
        attr: MemoryAttribute::empty(),
        virt: 0,
    };

    /// Whether it is code (mapped executable): runtime-services code, and
    /// boot-services or loader code the firmware marked runtime (Linux's
    /// __map_region leaves those executable too).
    pub fn is_code(&self) -> bool {
        matches!(
            self.ty,
            MemoryType::RUNTIME_SERVICES_CODE
                | MemoryType::BOOT_SERVICES_CODE
                | MemoryType::LOADER_CODE
        )
    }

    /// Whether it is memory-mapped I/O (the flash of pflash OVMF, say).
    pub fn is_mmio(&self) -> bool {
        matches!(self.ty, MemoryType::MMIO | MemoryType::MMIO_PORT_SPACE)
    }

    /// The PAT type it is mapped with: uncached for MMIO whatever its
    /// attributes allow, else write-back when the firmware allows it, else
    /// uncached.
    pub fn mem_type(&self) -> MemType {
        if !self.is_mmio() && self.attr.contains(MemoryAttribute::WRITE_BACK) {
            MemType::Wb
        } else {
            MemType::Uc
        }
    }

    /// The window address of physical address `phys` inside the region.
    pub fn virt_of(&self, phys: u64) -> Option<u64> {
        (self.phys..self.phys + self.len)
            .contains(&phys)
            .then(|| self.virt + (phys - self.phys))
    }
}

/// Why the runtime services cannot be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EfiError {
    /// More runtime regions than [`MAX_RUNTIME_REGIONS`].
    TooManyRegions,
    /// The window has no room left for this region.
    WindowOverflow {
        /// The region's physical start.
        phys: u64,
        /// Its length.
        len: u64,
    },
    /// The buffer for the rewritten map is too small.
    MapBufferTooSmall {
        /// The bytes needed.
        needed: usize,
    },
    /// The memory attributes table is malformed.
    BadAttributesTable(&'static str),
    /// More window mappings than [`MAX_MAPPINGS`].
    TooManyMappings,
    /// The PAT has no entry for a type the window needs.
    NoPatEntry(MemType),
    /// The attributes table or the runtime images describe a runtime
    /// region in a way baton cannot map.
    BadRefinement {
        /// Which source.
        source: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

impl fmt::Display for EfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EfiError::TooManyRegions => {
                write!(f, "more than {MAX_RUNTIME_REGIONS} EFI runtime regions")
            }
            EfiError::WindowOverflow { phys, len } => write!(
                f,
                "the EFI window has no room for the runtime region at {phys:#x} ({len:#x} bytes)"
            ),
            EfiError::MapBufferTooSmall { needed } => write!(
                f,
                "the runtime map needs {needed} bytes, more than baton's buffer"
            ),
            EfiError::BadAttributesTable(why) => {
                write!(f, "EFI memory attributes table: {why}")
            }
            EfiError::TooManyMappings => {
                write!(f, "more than {MAX_MAPPINGS} EFI window mappings")
            }
            EfiError::NoPatEntry(ty) => write!(f, "the PAT has no entry for {ty}"),
            EfiError::BadRefinement { source, why } => write!(f, "{source}: {why}"),
        }
    }
}

/// The runtime regions of a map, merged and placed in the EFI window.
#[derive(Clone)]
pub struct RuntimeRegions {
    regions: [RuntimeRegion; MAX_RUNTIME_REGIONS],
    len: usize,
}

impl fmt::Debug for RuntimeRegions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.regions()).finish()
    }
}

impl Default for RuntimeRegions {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeRegions {
    /// No regions (for a `static`).
    pub const fn new() -> Self {
        Self {
            regions: [RuntimeRegion::EMPTY; MAX_RUNTIME_REGIONS],
            len: 0,
        }
    }

    /// The regions, by ascending physical address (and virtual address
    /// when the map is sorted).
    pub fn regions(&self) -> &[RuntimeRegion] {
        &self.regions[..self.len]
    }

    /// The region holding physical address `phys`.
    pub fn region_of(&self, phys: u64) -> Option<&RuntimeRegion> {
        let i = self.regions().partition_point(|r| r.phys + r.len <= phys);
        self.regions().get(i).filter(|r| r.phys <= phys)
    }

    /// Collects, merges and places the runtime regions of `efi` in the
    /// window of `layout`, replacing any earlier content.
    pub fn assign(&mut self, efi: &EfiMemoryMap<'_>, layout: &Layout) -> Result<(), EfiError> {
        self.len = 0;
        // Merge each runtime descriptor into the one right before it in
        // the map when that one is runtime too, physically contiguous and
        // of equal type and attributes (Linux's efi_merge_regions).
        let mut previous_was_runtime = false;
        for e in efi.iter() {
            if !e.is_runtime() {
                previous_was_runtime = false;
                continue;
            }
            let d = e.desc();
            let r = RuntimeRegion {
                phys: d.phys_start,
                len: d.page_count * PAGE_SIZE,
                ty: d.ty,
                attr: d.att,
                virt: 0,
            };
            if previous_was_runtime {
                let last = &mut self.regions[self.len - 1];
                if last.phys + last.len == r.phys && last.ty == r.ty && last.attr == r.attr {
                    last.len += r.len;
                    continue;
                }
            }
            previous_was_runtime = true;
            if self.len == MAX_RUNTIME_REGIONS {
                return Err(EfiError::TooManyRegions);
            }
            self.regions[self.len] = r;
            self.len += 1;
        }

        // Top-down, walking the map in reverse, so that later descriptors
        // get higher addresses (Linux's efi_map_regions with
        // efi_map_next_md_reverse); each region keeps its offset within
        // 2 MiB (efi_map_region). In a sorted map virtual addresses then
        // grow with physical ones.
        let bottom = layout.efi_window_start();
        let mut va = layout.efi_top_down_start();
        for r in self.regions[..self.len].iter_mut().rev() {
            let overflow = EfiError::WindowOverflow {
                phys: r.phys,
                len: r.len,
            };
            let below = va.checked_sub(r.len).ok_or(overflow)?;
            let offset = r.phys & (TWO_MIB - 1);
            let mut start = (below & !(TWO_MIB - 1)) + offset;
            if start > below {
                start = start.checked_sub(TWO_MIB).ok_or(overflow)?;
            }
            if start < bottom {
                return Err(overflow);
            }
            r.virt = start;
            va = start;
        }
        // Kept by physical address for lookups ([`region_of`]).
        self.regions[..self.len].sort_unstable_by_key(|r| r.phys);
        Ok(())
    }
}

/// Writes into `out` the map SetVirtualAddressMap takes: every runtime
/// descriptor of `efi` in map order, `desc_size` bytes each (padding
/// included, as the firmware's stride demands), with `VirtualStart` set to
/// its window address. Returns the bytes written.
pub fn rewrite_map(
    efi: &EfiMemoryMap<'_>,
    runtime: &RuntimeRegions,
    out: &mut [u8],
) -> Result<usize, EfiError> {
    let stride = efi.desc_size();
    let count = efi.iter().filter(|e| e.is_runtime()).count();
    let needed = count * stride;
    if out.len() < needed {
        return Err(EfiError::MapBufferTooSmall { needed });
    }
    for (slot, e) in out
        .chunks_exact_mut(stride)
        .zip(efi.iter().filter(|e| e.is_runtime()))
    {
        slot.copy_from_slice(e.raw());
        let virt = runtime
            .region_of(e.start())
            .and_then(|r| r.virt_of(e.start()))
            .expect("every runtime descriptor lies in an assigned region");
        // VirtualStart: offset 16 of EFI_MEMORY_DESCRIPTOR.
        slot[16..24].copy_from_slice(&virt.to_le_bytes());
    }
    Ok(needed)
}

/// The size of the attributes table's header.
pub const MAT_HEADER_SIZE: usize = 16;

/// A validated `EFI_MEMORY_ATTRIBUTES_TABLE`.
#[derive(Debug, Clone, Copy)]
pub struct AttributesTable<'a> {
    bytes: &'a [u8],
    desc_size: usize,
    count: usize,
}

/// One entry of the attributes table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// The physical start.
    pub phys: u64,
    /// The length in bytes.
    pub len: u64,
    /// The descriptor's type (runtime code or data).
    pub ty: MemoryType,
    /// `RO`, `XP` and the rest.
    pub attr: MemoryAttribute,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> AttributesTable<'a> {
    /// The entry count and descriptor size from the 16-byte header, so the
    /// caller knows how many bytes to read: `(count, desc_size)`.
    pub fn header(header: &[u8]) -> Result<(usize, usize), EfiError> {
        if header.len() < MAT_HEADER_SIZE {
            return Err(EfiError::BadAttributesTable("truncated header"));
        }
        let version = u32_at(header, 0);
        if !(1..=2).contains(&version) {
            return Err(EfiError::BadAttributesTable("unknown version"));
        }
        let count = u32_at(header, 4) as usize;
        let desc_size = u32_at(header, 8) as usize;
        if desc_size < 40 || !desc_size.is_multiple_of(8) {
            return Err(EfiError::BadAttributesTable("bad descriptor size"));
        }
        if count > MAX_MAPPINGS {
            return Err(EfiError::BadAttributesTable("too many entries"));
        }
        Ok((count, desc_size))
    }

    /// Validates the whole table (header and entries).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EfiError> {
        let (count, desc_size) = Self::header(bytes)?;
        if bytes.len() < MAT_HEADER_SIZE + count * desc_size {
            return Err(EfiError::BadAttributesTable("truncated entries"));
        }
        let table = Self {
            bytes,
            desc_size,
            count,
        };
        for i in 0..count {
            let d = table.raw(i);
            let (phys, pages) = (u64_at(d, 8), u64_at(d, 24));
            let end = pages
                .checked_mul(PAGE_SIZE)
                .filter(|&len| len != 0)
                .and_then(|len| phys.checked_add(len));
            if end.is_none() || !phys.is_multiple_of(PAGE_SIZE) {
                return Err(EfiError::BadAttributesTable("bad entry"));
            }
        }
        Ok(table)
    }

    fn raw(&self, i: usize) -> &[u8] {
        let at = MAT_HEADER_SIZE + i * self.desc_size;
        &self.bytes[at..at + self.desc_size]
    }

    /// The entries (their lengths checked by [`parse`](Self::parse)).
    pub fn iter(&self) -> impl Iterator<Item = Attribute> + '_ {
        (0..self.count).map(|i| {
            let d = self.raw(i);
            Attribute {
                phys: u64_at(d, 8),
                len: u64_at(d, 24) * PAGE_SIZE,
                ty: MemoryType(u32_at(d, 0)),
                attr: MemoryAttribute::from_bits_retain(u64_at(d, 32)),
            }
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// How a piece of the window is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and execute.
    ReadExecute,
    /// Read only, no execute.
    ReadOnly,
    /// Read and write, no execute.
    ReadWrite,
}

impl Access {
    /// The permission flags (with NX only when the CPU has it).
    pub fn flags(self, nx: bool) -> PageTableFlags {
        let nx = if nx {
            PageTableFlags::NO_EXECUTE
        } else {
            PageTableFlags::empty()
        };
        match self {
            Access::ReadExecute => PageTableFlags::empty(),
            Access::ReadOnly => nx,
            Access::ReadWrite => PageTableFlags::WRITABLE | nx,
        }
    }

    /// The default for a region: code read + execute, the rest read-write.
    fn default_for(region: &RuntimeRegion) -> Self {
        if region.is_code() {
            Access::ReadExecute
        } else {
            Access::ReadWrite
        }
    }
}

/// One mapping of the EFI window with its access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowMapping {
    /// The mapping.
    pub mapping: Mapping,
    /// Its permissions.
    pub access: Access,
    /// Its PAT type.
    pub mem_type: MemType,
    /// The effective memory type (MTRR and PAT combined), uniform over it.
    pub effective: MemType,
}

/// The EFI window's mappings, in ascending virtual order.
#[derive(Clone)]
pub struct Window {
    mappings: [WindowMapping; MAX_MAPPINGS],
    len: usize,
    /// Whether an attributes table refined the permissions.
    pub refined: bool,
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.mappings()).finish()
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

const EMPTY_WINDOW_MAPPING: WindowMapping = WindowMapping {
    mapping: Mapping {
        virt: 0,
        phys: PhysAddr::zero(),
        len: 0,
        flags: PageTableFlags::empty(),
        max_page: PageSize::Size4K,
    },
    access: Access::ReadOnly,
    mem_type: MemType::Wb,
    effective: MemType::Wb,
};

impl Window {
    /// No mappings (for a `static`).
    pub const fn new() -> Self {
        Self {
            mappings: [EMPTY_WINDOW_MAPPING; MAX_MAPPINGS],
            len: 0,
            refined: false,
        }
    }

    /// The mappings, in ascending virtual order.
    pub fn mappings(&self) -> &[WindowMapping] {
        &self.mappings[..self.len]
    }

    fn push(&mut self, m: WindowMapping) -> Result<(), EfiError> {
        // Merge with the previous piece when nothing differs.
        if let Some(last) = self.len.checked_sub(1).map(|i| &mut self.mappings[i]) {
            let l = &mut last.mapping;
            if l.virt + l.len == m.mapping.virt
                && l.phys + l.len == m.mapping.phys
                && l.flags == m.mapping.flags
                && last.access == m.access
                && last.effective == m.effective
            {
                l.len += m.mapping.len;
                return Ok(());
            }
        }
        if self.len == MAX_MAPPINGS {
            return Err(EfiError::TooManyMappings);
        }
        self.mappings[self.len] = m;
        self.len += 1;
        Ok(())
    }

    /// The window's mappings for `runtime`: each region with its default
    /// access, refined by `refine` (the attributes table, or the runtime
    /// images' sections) where there is one. Caching: the region's
    /// [`RuntimeRegion::mem_type`] through `pat`. `nx` and `global` say
    /// whether the CPU has those bits and the window wants them.
    pub fn make(
        &mut self,
        runtime: &RuntimeRegions,
        refine: Option<&dyn Refine>,
        pat: &Pat,
        mtrrs: &Mtrrs,
        nx: bool,
        global: bool,
    ) -> Result<(), EfiError> {
        self.len = 0;
        self.refined = refine.is_some();
        // In virtual order, which differs from the physical one when the
        // map is unsorted.
        let regions = runtime.regions();
        let mut order = [0u16; MAX_RUNTIME_REGIONS];
        for (i, slot) in order.iter_mut().enumerate().take(regions.len()) {
            *slot = i as u16;
        }
        let order = &mut order[..regions.len()];
        order.sort_unstable_by_key(|&i| regions[usize::from(i)].virt);
        for region in order.iter().map(|&i| &regions[usize::from(i)]) {
            let mem_type = region.mem_type();
            let cache = pat
                .flags_any_size(mem_type)
                .ok_or(EfiError::NoPatEntry(mem_type))?;
            let global = if global {
                PageTableFlags::GLOBAL
            } else {
                PageTableFlags::empty()
            };
            let (pieces, n) = pieces(region, refine)?;
            for &(start, end, access) in &pieces[..n] {
                // Cut where the effective memory type (MTRR type with this
                // PAT type) changes, so that no large page spans two.
                for run in effective_runs(mtrrs, start, end, mem_type) {
                    self.push(WindowMapping {
                        mapping: Mapping {
                            virt: region.virt + (run.start - region.phys),
                            phys: PhysAddr::new(run.start),
                            len: run.end - run.start,
                            flags: cache | global | access.flags(nx),
                            max_page: PageSize::Size2M,
                        },
                        access,
                        mem_type,
                        effective: run.effective,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Where this window and `other` disagree on whether a runtime page
    /// is executable: `(virt, len)` of each such stretch, in order.
    pub fn exec_disagreements<'a>(
        &'a self,
        other: &'a Window,
    ) -> impl Iterator<Item = (u64, u64)> + 'a {
        let exec = |w: &Window, va: u64| {
            w.mappings()
                .iter()
                .find(|m| m.mapping.contains(va))
                .map(|m| m.access == Access::ReadExecute)
        };
        let mut pages = self.mappings().iter().flat_map(|m| {
            (m.mapping.virt..m.mapping.virt + m.mapping.len).step_by(PAGE_SIZE as usize)
        });
        let mut pending: Option<(u64, u64)> = None;
        core::iter::from_fn(move || {
            for va in pages.by_ref() {
                if exec(self, va) == exec(other, va) {
                    if let Some(done) = pending.take() {
                        return Some(done);
                    }
                    continue;
                }
                match &mut pending {
                    Some((start, len)) if *start + *len == va => *len += PAGE_SIZE,
                    Some(_) => return pending.replace((va, PAGE_SIZE)),
                    None => pending = Some((va, PAGE_SIZE)),
                }
            }
            pending.take()
        })
    }
}

/// The most refinements inside one runtime region.
const MAX_PIECES: usize = 256;

/// A region's pieces: `(start, end, access)`.
type Pieces = [(u64, u64, Access); MAX_PIECES];

/// `region` cut into pieces of one access each, in address order: the
/// refinements inside it, the gaps between them with the region's
/// default. Returns the pieces as `(start, end, access)` and their count.
fn pieces(
    region: &RuntimeRegion,
    refine: Option<&dyn Refine>,
) -> Result<(Pieces, usize), EfiError> {
    let default = Access::default_for(region);
    let end = region.phys + region.len;
    let mut found = [(0, 0, Access::ReadOnly); MAX_PIECES];
    let mut n = 0;
    let mut error = None;
    if let Some(refine) = refine {
        refine.each(&mut |phys, len, access| {
            let (s, e) = (phys.max(region.phys), phys.saturating_add(len).min(end));
            if s >= e {
                return;
            }
            if n == MAX_PIECES {
                error = Some(EfiError::BadRefinement {
                    source: refine.source(),
                    why: "more than 256 entries in one runtime region",
                });
                return;
            }
            found[n] = (s, e, access.unwrap_or(default));
            n += 1;
        });
    }
    if let Some(error) = error {
        return Err(error);
    }
    found[..n].sort_unstable_by_key(|e| e.0);
    // With the gaps, up to twice as many and the tail: more than fit is
    // refused below, never cut short.
    let mut out = [(0, 0, Access::ReadOnly); MAX_PIECES];
    let (mut m, mut full) = (0, false);
    let mut at = region.phys;
    let mut push = |start: u64, end: u64, access| {
        if start >= end {
            return;
        }
        if m == MAX_PIECES {
            full = true;
            return;
        }
        out[m] = (start, end, access);
        m += 1;
    };
    for &(s, e, access) in &found[..n] {
        if s < at {
            return Err(EfiError::BadRefinement {
                source: refine.map_or("", |r| r.source()),
                why: "overlapping entries",
            });
        }
        push(at, s, default);
        push(s, e, access);
        at = e;
    }
    push(at, end, default);
    if full {
        return Err(EfiError::BadRefinement {
            source: refine.map_or("", |r| r.source()),
            why: "more than 256 pieces in one runtime region",
        });
    }
    Ok((out, m))
}

/// Where the window's permissions finer than a region's default come
/// from: the firmware's memory attributes table, or the section headers of
/// the runtime images themselves ([`pe::Images`]).
pub trait Refine {
    /// What it is, for logs and errors.
    fn source(&self) -> &'static str;

    /// Calls `visit(phys, len, access)` for every range it describes;
    /// `None` keeps the region's default.
    fn each(&self, visit: &mut dyn FnMut(u64, u64, Option<Access>));
}

impl Refine for AttributesTable<'_> {
    fn source(&self) -> &'static str {
        "the memory attributes table"
    }

    /// `RO` drops write, `XP` drops execute; an entry with neither keeps
    /// its region's default rather than becoming writable and executable.
    fn each(&self, visit: &mut dyn FnMut(u64, u64, Option<Access>)) {
        for a in self.iter() {
            let ro = a.attr.contains(MemoryAttribute::READ_ONLY);
            let xp = a.attr.contains(MemoryAttribute::EXECUTE_PROTECT);
            let access = match (ro, xp) {
                (true, false) => Some(Access::ReadExecute),
                (true, true) => Some(Access::ReadOnly),
                (false, true) => Some(Access::ReadWrite),
                (false, false) => None,
            };
            visit(a.phys, a.len, access);
        }
    }
}

/// The one-to-one mappings the temporary address space for
/// SetVirtualAddressMap needs: every runtime region (the firmware runs and
/// relocates itself at its physical addresses, so code is writable and
/// executable here, for the length of the call only, as in Linux's
/// `efi_mm`), plus `extra` ranges (page 0 and the rewritten map) read-write
/// and not executable. Caching as in the window.
pub fn identity_mappings<'a>(
    runtime: &'a RuntimeRegions,
    extra: &'a [(u64, u64)],
    pat: &'a Pat,
    nx: bool,
) -> impl Iterator<Item = Mapping> + 'a {
    let nx_flag = if nx {
        PageTableFlags::NO_EXECUTE
    } else {
        PageTableFlags::empty()
    };
    let regions = runtime.regions().iter().map(move |r| {
        let cache = pat
            .flags_any_size(r.mem_type())
            .unwrap_or(PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH);
        let exec = if r.is_code() {
            PageTableFlags::empty()
        } else {
            nx_flag
        };
        Mapping {
            virt: r.phys,
            phys: PhysAddr::new(r.phys),
            len: r.len,
            flags: PageTableFlags::WRITABLE | exec | cache,
            max_page: PageSize::Size2M,
        }
    });
    let extra = extra.iter().map(move |&(start, len)| {
        let start_page = start & !(PAGE_SIZE - 1);
        let end = (start + len).next_multiple_of(PAGE_SIZE);
        Mapping {
            virt: start_page,
            phys: PhysAddr::new(start_page),
            len: end - start_page,
            flags: PageTableFlags::WRITABLE | nx_flag,
            max_page: PageSize::Size4K,
        }
    });
    regions.chain(extra)
}
