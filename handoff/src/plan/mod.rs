//! The mapping plan: what baton's own page tables map, decided from the
//! normalised memory map, the MTRRs, the PAT and the CPU's features.
//!
//! * **physmap** at `page_offset_base`: every RAM range (see
//!   [`Kind::is_ram`](crate::memmap::Kind::is_ram)) and nothing else, read-write, non-executable,
//!   global. RAM is cut into *segments* of uniform effective memory type
//!   (MTRR type combined with the PAT type its EFI attributes call for);
//!   each segment is one [`Mapping`] allowed the largest pages the CPU has
//!   (1 GiB with pdpe1gb, else 2 MiB), so a large page can never cover a
//!   hole, a non-RAM range or a change of memory type. What those cuts cost
//!   is counted in [`SplitCost`].
//! * **kernel image** at its link address, per section: text RX, rodata R +
//!   NX, data and bss RW + NX, with the guard page below the boot stack
//!   left unmapped.
//! * **framebuffer window** in the fixmap, when the kernel asks for one:
//!   the firmware's framebuffer, write-combining, read-write, never
//!   executable (see [`framebuffer`]).
//! * vmalloc, the vmemmap and the EFI window stay empty: later stages fill
//!   the top-level entries the layout gives them. The lower half stays
//!   empty: there is no identity map.
//!
//! [`verify`] then holds built (or live) tables to the plan, leaf by leaf,
//! and every physmap leaf to the memory map and the MTRRs directly.

use core::fmt;

use uefi_raw::table::boot::MemoryAttribute;
use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

use crate::Levels;
use crate::PAGE_SIZE;
use crate::layout::Layout;
use crate::memmap::MemoryMap;
use crate::memtype::{
    MemType, Mtrrs, PageKind, Pat, effective_runs, effective_type, uniform_effective,
};
use crate::paging::{
    LeafCount, Mapping, PAT_4K, PageSize, TableCount, leaf_count, minimum_tables,
    minimum_tables_sorted,
};

pub mod framebuffer;
#[cfg(test)]
mod framebuffer_tests;
#[cfg(test)]
mod tests;
mod verify;
#[cfg(test)]
mod verify_tests;

pub use verify::{Verified, VerifyError, verify};

/// The most mappings a plan holds: a physmap segment per RAM run and type
/// change, plus the kernel's sections.
pub const MAX_MAPPINGS: usize = 4096;

/// What the CPU offers that the plan depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuCaps {
    /// 1 GiB pages (CPUID pdpe1gb).
    pub gb_pages: bool,
    /// The execute-disable bit (EFER.NXE on): without it NX is a reserved
    /// bit and must stay clear.
    pub nx: bool,
    /// Global pages (CR4.PGE).
    pub global: bool,
}

/// The permissions of a kernel section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Read and execute (`.text`).
    ReadExecute,
    /// Read only, no execute (`.rodata`).
    ReadOnly,
    /// Read and write, no execute (`.data`, `.bss`).
    ReadWrite,
}

/// One section of the kernel image, by virtual address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSection {
    /// A name for logs (`text`, `rodata`, `data`).
    pub name: &'static str,
    /// The first virtual address (4 KiB-aligned).
    pub start: u64,
    /// The end (exclusive, 4 KiB-aligned).
    pub end: u64,
    /// Its permissions.
    pub perm: Perm,
}

/// Where the kernel image is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelImage {
    /// The virtual address the image is linked (and loaded) at.
    pub virt_base: u64,
    /// The physical address it was loaded at (contiguous).
    pub phys_base: PhysAddr,
    /// Its sections, each mapped with its own permissions; gaps between
    /// them (the guard page below the boot stack) stay unmapped.
    pub sections: [KernelSection; 4],
}

impl KernelImage {
    /// Where the image ends (exclusive): the end of its last section.
    pub fn end(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| s.end)
            .max()
            .unwrap_or(self.virt_base)
    }
}

#[cfg(any(test, feature = "sim"))]
impl KernelImage {
    /// For tests: baton's image shape (128 KiB of text, 32 KiB of rodata,
    /// 32 KiB of data, the boot stack's guard page, then bss up to 1 MiB)
    /// at its link address, loaded at `phys`.
    pub fn sample(phys: u64) -> Self {
        const VIRT: u64 = 0xffff_ffff_8000_0000;
        let section = |name, start: u64, end: u64, perm| KernelSection {
            name,
            start: VIRT + start,
            end: VIRT + end,
            perm,
        };
        KernelImage {
            virt_base: VIRT,
            phys_base: PhysAddr::new(phys),
            sections: [
                section("text", 0, 0x2_0000, Perm::ReadExecute),
                section("rodata", 0x2_0000, 0x2_8000, Perm::ReadOnly),
                section("data", 0x2_8000, 0x3_0000, Perm::ReadWrite),
                // 0x30000: the boot stack's guard page, unmapped.
                section("bss", 0x3_1000, 0x10_0000, Perm::ReadWrite),
            ],
        }
    }
}

/// What a planned mapping is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Part of the direct map of RAM.
    Physmap,
    /// A kernel section.
    Kernel(Perm),
    /// Part of the EFI runtime window.
    EfiRuntime(crate::efi::Access),
    /// The framebuffer window in the fixmap.
    Framebuffer,
}

/// The purpose and the effective memory type of one mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// What the mapping is for.
    pub purpose: Purpose,
    /// The PAT type its flags select.
    pub pat_type: MemType,
    /// The effective memory type (MTRR and PAT combined), uniform over the
    /// mapping.
    pub effective: MemType,
}

/// What cutting RAM at memory-type changes costs, against mapping each
/// contiguous RAM run as if its type were uniform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SplitCost {
    /// Cuts where the effective MTRR type changes inside RAM.
    pub mtrr_splits: u64,
    /// Cuts where the EFI attributes (hence the PAT type) change between
    /// touching RAM regions.
    pub attr_splits: u64,
    /// Physmap leaves with the cuts.
    pub leaves: LeafCount,
    /// Physmap leaves without them.
    pub ideal_leaves: LeafCount,
    /// Page-table frames the whole plan needs.
    pub tables: TableCount,
    /// Page-table frames it would need without the cuts.
    pub ideal_tables: TableCount,
}

impl fmt::Display for SplitCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} MTRR and {} EFI-attribute splits: {:+} leaves, {:+} table frames \
             (4K {} / 2M {} / 1G {}, not {} / {} / {})",
            self.mtrr_splits,
            self.attr_splits,
            self.leaves.total() as i64 - self.ideal_leaves.total() as i64,
            self.tables.total() as i64 - self.ideal_tables.total() as i64,
            self.leaves.size_4k,
            self.leaves.size_2m,
            self.leaves.size_1g,
            self.ideal_leaves.size_4k,
            self.ideal_leaves.size_2m,
            self.ideal_leaves.size_1g,
        )
    }
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// More mappings than [`MAX_MAPPINGS`].
    TooManyMappings,
    /// The PAT has no entry for a type the plan needs.
    NoPatEntry(MemType),
    /// A kernel section is empty, unaligned, or outside the kernel region.
    BadKernelSection {
        /// The section's name.
        name: &'static str,
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// The map holds no RAM at all.
    NoRam,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PlanError::TooManyMappings => {
                write!(f, "the plan needs more than {MAX_MAPPINGS} mappings")
            }
            PlanError::NoPatEntry(ty) => write!(f, "the PAT has no entry for {ty}"),
            PlanError::BadKernelSection { name, start, end } => write!(
                f,
                "kernel section {name} {start:#x}-{end:#x} is empty, not page-aligned \
                 or outside the kernel image region"
            ),
            PlanError::NoRam => write!(f, "the memory map holds no RAM"),
        }
    }
}

/// The PAT type for RAM with EFI attributes `attr`: write-back when the
/// firmware allows it (or says nothing, on BIOS boots), else the strongest
/// caching it does allow, else uncached.
pub fn ram_pat_type(attr: Option<MemoryAttribute>) -> MemType {
    let Some(attr) = attr else {
        return MemType::Wb;
    };
    if attr.contains(MemoryAttribute::WRITE_BACK) {
        MemType::Wb
    } else if attr.contains(MemoryAttribute::WRITE_THROUGH) {
        MemType::Wt
    } else if attr.contains(MemoryAttribute::WRITE_COMBINE) {
        MemType::Wc
    } else {
        MemType::Uc
    }
}

/// The mappings baton's own page tables hold, in ascending virtual order.
pub struct Plan {
    mappings: [Mapping; MAX_MAPPINGS],
    meta: [Meta; MAX_MAPPINGS],
    len: usize,
    levels: Levels,
    /// What the memory-type cuts cost.
    pub cost: SplitCost,
    /// RAM bytes in the physmap.
    pub physmap_bytes: u64,
    /// RAM above what the physmap can hold (left unmapped).
    pub unmapped_ram: u64,
    /// The largest page size the physmap uses.
    pub max_page: PageSize,
    /// Regions whose mappings change at run time (vmalloc, the vmemmap):
    /// [`verify`] leaves their leaves alone.
    dynamic: [(u64, u64); 4],
    dynamic_len: usize,
    framebuffer: Option<Result<framebuffer::FramebufferWindow, framebuffer::FramebufferError>>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("mappings", &self.mappings())
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

const EMPTY_MAPPING: Mapping = Mapping {
    virt: 0,
    phys: PhysAddr::zero(),
    len: 0,
    flags: PageTableFlags::empty(),
    max_page: PageSize::Size4K,
};

const EMPTY_META: Meta = Meta {
    purpose: Purpose::Physmap,
    pat_type: MemType::Wb,
    effective: MemType::Wb,
};

/// What the plan is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The normalised memory map.
    pub map: &'a MemoryMap,
    /// The address-space layout of the paging mode.
    pub layout: &'a Layout,
    /// The MTRRs.
    pub mtrrs: &'a Mtrrs,
    /// The PAT the tables will run under.
    pub pat: &'a Pat,
    /// The CPU's features.
    pub cpu: CpuCaps,
    /// The kernel image.
    pub kernel: &'a KernelImage,
    /// The framebuffer to map for the screen console, if any.
    pub framebuffer: Option<framebuffer::Framebuffer>,
}

impl Plan {
    /// An empty plan (for a `static`; fill it with [`Plan::make`]).
    pub const fn new() -> Self {
        Self {
            mappings: [EMPTY_MAPPING; MAX_MAPPINGS],
            meta: [EMPTY_META; MAX_MAPPINGS],
            len: 0,
            levels: Levels::Four,
            cost: SplitCost {
                mtrr_splits: 0,
                attr_splits: 0,
                leaves: LeafCount {
                    size_4k: 0,
                    size_2m: 0,
                    size_1g: 0,
                },
                ideal_leaves: LeafCount {
                    size_4k: 0,
                    size_2m: 0,
                    size_1g: 0,
                },
                tables: TableCount {
                    pml5: 0,
                    pml4: 0,
                    pdpt: 0,
                    pd: 0,
                    pt: 0,
                },
                ideal_tables: TableCount {
                    pml5: 0,
                    pml4: 0,
                    pdpt: 0,
                    pd: 0,
                    pt: 0,
                },
            },
            physmap_bytes: 0,
            unmapped_ram: 0,
            max_page: PageSize::Size2M,
            dynamic: [(0, 0); 4],
            dynamic_len: 0,
            framebuffer: None,
        }
    }

    /// Declares `start..end` a region whose mappings change at run time,
    /// once memory services own it: [`verify`] no longer holds its leaves
    /// to the plan (the W^X check still covers them).
    ///
    /// # Panics
    ///
    /// With more than four such regions.
    pub fn allow_dynamic(&mut self, start: u64, end: u64) {
        assert!(
            self.dynamic_len < self.dynamic.len(),
            "too many dynamic regions"
        );
        self.dynamic[self.dynamic_len] = (start, end);
        self.dynamic_len += 1;
    }

    /// Whether `va` lies in a region declared with
    /// [`allow_dynamic`](Self::allow_dynamic).
    pub fn is_dynamic(&self, va: u64) -> bool {
        self.dynamic[..self.dynamic_len]
            .iter()
            .any(|&(start, end)| (start..end).contains(&va))
    }

    /// The planned mappings, in ascending virtual order.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings[..self.len]
    }

    /// Purpose and memory type of each mapping, parallel to
    /// [`mappings`](Self::mappings).
    pub fn meta(&self) -> &[Meta] {
        &self.meta[..self.len]
    }

    /// The framebuffer window, if [`Inputs::framebuffer`] asked for one:
    /// where it is, or why there is none (a framebuffer the plan cannot map
    /// is left out, never an error of the whole plan).
    pub fn framebuffer(
        &self,
    ) -> Option<Result<framebuffer::FramebufferWindow, framebuffer::FramebufferError>> {
        self.framebuffer
    }

    /// The paging mode the plan is for.
    pub fn levels(&self) -> Levels {
        self.levels
    }

    /// The page-table frames the plan needs, per level: the minimum for
    /// the page sizes chosen.
    pub fn minimum_tables(&self) -> TableCount {
        minimum_tables(self.mappings(), self.levels)
    }

    /// The leaves the plan's mappings take, per size.
    pub fn leaves(&self) -> LeafCount {
        count_leaves(self.mappings().iter().copied())
    }

    fn push(&mut self, mapping: Mapping, meta: Meta) -> Result<(), PlanError> {
        if self.len == MAX_MAPPINGS {
            return Err(PlanError::TooManyMappings);
        }
        self.mappings[self.len] = mapping;
        self.meta[self.len] = meta;
        self.len += 1;
        Ok(())
    }

    /// Plans baton's address space from `inputs`, replacing any earlier
    /// content.
    pub fn make(&mut self, inputs: &Inputs<'_>) -> Result<(), PlanError> {
        let layout = inputs.layout;
        self.levels = layout.levels();
        self.max_page = if inputs.cpu.gb_pages {
            PageSize::Size1G
        } else {
            PageSize::Size2M
        };
        self.len = 0;
        self.unmapped_ram = 0;
        self.physmap_bytes = 0;
        self.dynamic_len = 0;
        self.framebuffer = None;

        // The ideal: every contiguous RAM run as one mapping.
        let ideal_leaves = count_leaves(self.ideal_physmap(inputs));
        if ideal_leaves.total() == 0 {
            return Err(PlanError::NoRam);
        }

        // The real physmap: runs of equal PAT type, cut where the effective
        // type changes.
        let mut cost = SplitCost::default();
        let regions = inputs.map.regions();
        let mut i = 0;
        while i < regions.len() {
            let first = &regions[i];
            if !first.kind.is_ram() {
                i += 1;
                continue;
            }
            let pat_type = ram_pat_type(first.attr);
            let (start, mut end) = (first.start, first.end);
            i += 1;
            while let Some(next) = regions.get(i) {
                if !next.kind.is_ram() || next.start != end {
                    break;
                }
                if ram_pat_type(next.attr) != pat_type {
                    cost.attr_splits += 1;
                    break;
                }
                end = next.end;
                i += 1;
            }
            let limit = layout.physmap_size();
            if end > limit {
                self.unmapped_ram += end - start.max(limit);
                end = limit;
            }
            if start < end {
                cost.mtrr_splits += self.push_segments(inputs, start, end, pat_type)?;
            }
        }
        cost.leaves = self.leaves();
        cost.ideal_leaves = ideal_leaves;

        for section in &inputs.kernel.sections {
            self.push_kernel_section(inputs, section)?;
        }
        if let Some(fb) = inputs.framebuffer {
            self.push_framebuffer(inputs, fb)?;
        }

        // The ideal table count: the same kernel mappings with the ideal
        // physmap. Computed from the real plan's kernel part plus the runs.
        cost.tables = self.minimum_tables();
        cost.ideal_tables = self.ideal_tables(inputs);
        self.cost = cost;
        Ok(())
    }

    /// The leaf flags for a physmap mapping of PAT type `pat_type`.
    fn physmap_mapping(
        &self,
        inputs: &Inputs<'_>,
        start: u64,
        end: u64,
        cache: PageTableFlags,
    ) -> Mapping {
        let mut flags = PageTableFlags::WRITABLE | cache;
        if inputs.cpu.nx {
            flags |= PageTableFlags::NO_EXECUTE;
        }
        if inputs.cpu.global {
            flags |= PageTableFlags::GLOBAL;
        }
        // Cache bits with the PAT bit exist only for 4 KiB pages.
        let max_page = if cache.contains(PAT_4K) {
            PageSize::Size4K
        } else {
            self.max_page
        };
        Mapping {
            virt: inputs.layout.page_offset_base() + start,
            phys: PhysAddr::new(start),
            len: end - start,
            flags,
            max_page,
        }
    }

    /// Pushes `start..end` (RAM of PAT type `pat_type`) as segments of
    /// uniform effective type. Returns the number of cuts made.
    fn push_segments(
        &mut self,
        inputs: &Inputs<'_>,
        start: u64,
        end: u64,
        pat_type: MemType,
    ) -> Result<u64, PlanError> {
        let pat = inputs.pat;
        // Prefer the encoding without the PAT bit, which large pages allow.
        let cache = pat
            .flags_any_size(pat_type)
            .or(pat.flags_for(pat_type, PageKind::Size4KiB))
            .ok_or(PlanError::NoPatEntry(pat_type))?;
        let mut segments = 0;
        for run in effective_runs(inputs.mtrrs, start, end, pat_type) {
            self.push_physmap(inputs, run.start, run.end, cache, pat_type, run.effective)?;
            segments += 1;
        }
        Ok(segments - 1)
    }

    /// Pushes the physmap mapping of `start..end`, one effective type.
    fn push_physmap(
        &mut self,
        inputs: &Inputs<'_>,
        start: u64,
        end: u64,
        cache: PageTableFlags,
        pat_type: MemType,
        effective: MemType,
    ) -> Result<(), PlanError> {
        let mapping = self.physmap_mapping(inputs, start, end, cache);
        self.push(
            mapping,
            Meta {
                purpose: Purpose::Physmap,
                pat_type,
                effective,
            },
        )?;
        self.physmap_bytes += end - start;
        Ok(())
    }

    fn push_kernel_section(
        &mut self,
        inputs: &Inputs<'_>,
        section: &KernelSection,
    ) -> Result<(), PlanError> {
        let kernel = inputs.kernel;
        let layout = inputs.layout;
        let bad = PlanError::BadKernelSection {
            name: section.name,
            start: section.start,
            end: section.end,
        };
        if section.start >= section.end
            || !section.start.is_multiple_of(PAGE_SIZE)
            || !section.end.is_multiple_of(PAGE_SIZE)
            || section.start < kernel.virt_base
            || section.start < layout.kernel_image_start()
            || section.end > layout.kernel_image_end()
        {
            return Err(bad);
        }
        let mut flags = PageTableFlags::empty();
        if inputs.cpu.global {
            flags |= PageTableFlags::GLOBAL;
        }
        match section.perm {
            Perm::ReadExecute => {}
            Perm::ReadOnly => {
                if inputs.cpu.nx {
                    flags |= PageTableFlags::NO_EXECUTE;
                }
            }
            Perm::ReadWrite => {
                flags |= PageTableFlags::WRITABLE;
                if inputs.cpu.nx {
                    flags |= PageTableFlags::NO_EXECUTE;
                }
            }
        }
        let wb = inputs
            .pat
            .flags_any_size(MemType::Wb)
            .ok_or(PlanError::NoPatEntry(MemType::Wb))?;
        let effective = effective_type(
            inputs
                .mtrrs
                .type_at(kernel.phys_base.as_u64() + (section.start - kernel.virt_base)),
            MemType::Wb,
        );
        self.push(
            Mapping {
                virt: section.start,
                phys: kernel.phys_base + (section.start - kernel.virt_base),
                len: section.end - section.start,
                flags: flags | wb,
                max_page: PageSize::Size2M,
            },
            Meta {
                purpose: Purpose::Kernel(section.perm),
                pat_type: MemType::Wb,
                effective,
            },
        )
    }

    /// Maps `fb` in the layout's framebuffer area (the fixmap, as a rule),
    /// if it can be: otherwise records why not.
    fn push_framebuffer(
        &mut self,
        inputs: &Inputs<'_>,
        fb: framebuffer::Framebuffer,
    ) -> Result<(), PlanError> {
        let window = framebuffer::window(
            fb,
            inputs.layout,
            inputs.map,
            inputs.pat,
            inputs.cpu.nx,
            inputs.cpu.global,
        );
        self.framebuffer = Some(window);
        let Ok(w) = window else {
            return Ok(());
        };
        let start = w.mapping.phys.as_u64();
        let effective = uniform_effective(inputs.mtrrs, start, start + w.mapping.len, w.mem_type)
            .unwrap_or(w.mem_type);
        self.push(
            w.mapping,
            Meta {
                purpose: Purpose::Framebuffer,
                pat_type: w.mem_type,
                effective,
            },
        )?;
        // In ascending virtual order: below a relocated image when the
        // image took the fixmap's place.
        let at = self.mappings[..self.len - 1].partition_point(|m| m.virt < w.mapping.virt);
        self.mappings[at..self.len].rotate_right(1);
        self.meta[at..self.len].rotate_right(1);
        Ok(())
    }

    /// Adds the EFI runtime window's mappings (after the switch, once the
    /// firmware's tables are readable), keeping the plan in ascending
    /// virtual order.
    pub fn add_efi_window(&mut self, window: &crate::efi::Window) -> Result<(), PlanError> {
        let new = window.mappings();
        if self.len + new.len() > MAX_MAPPINGS {
            return Err(PlanError::TooManyMappings);
        }
        let Some(first) = new.first() else {
            return Ok(());
        };
        let at = self
            .mappings()
            .partition_point(|m| m.virt < first.mapping.virt);
        self.mappings.copy_within(at..self.len, at + new.len());
        self.meta.copy_within(at..self.len, at + new.len());
        for (i, w) in new.iter().enumerate() {
            self.mappings[at + i] = w.mapping;
            self.meta[at + i] = Meta {
                purpose: Purpose::EfiRuntime(w.access),
                pat_type: w.mem_type,
                effective: w.effective,
            };
        }
        self.len += new.len();
        Ok(())
    }

    /// The physmap as if RAM had one memory type: every contiguous run as
    /// one mapping.
    fn ideal_physmap<'s>(
        &'s self,
        inputs: &'s Inputs<'_>,
    ) -> impl Iterator<Item = Mapping> + Clone + 's {
        let limit = inputs.layout.physmap_size();
        inputs.map.ram_runs().filter_map(move |run| {
            let end = run.end.min(limit);
            (run.start < end)
                .then(|| self.physmap_mapping(inputs, run.start, end, PageTableFlags::empty()))
        })
    }

    /// Removes the EFI window's mappings again (when runtime services
    /// cannot be set up after all and the window is unmapped).
    pub fn remove_efi_window(&mut self) {
        let mut kept = 0;
        for i in 0..self.len {
            if !matches!(self.meta[i].purpose, Purpose::EfiRuntime(_)) {
                self.mappings[kept] = self.mappings[i];
                self.meta[kept] = self.meta[i];
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// The tables the plan would need with uncut RAM runs: the ideal
    /// physmap followed by the kernel's mappings, counted as they are
    /// generated (no second copy of the plan).
    fn ideal_tables(&self, inputs: &Inputs<'_>) -> TableCount {
        let physmap = self.ideal_physmap(inputs);
        let kernel = self
            .mappings()
            .iter()
            .zip(self.meta())
            .filter(|(_, meta)| matches!(meta.purpose, Purpose::Kernel(_) | Purpose::Framebuffer))
            .map(|(m, _)| *m);
        minimum_tables_sorted(physmap.chain(kernel), self.levels)
    }
}

impl Default for Plan {
    fn default() -> Self {
        Self::new()
    }
}

fn count_leaves(mappings: impl IntoIterator<Item = Mapping>) -> LeafCount {
    mappings
        .into_iter()
        .fold(LeafCount::default(), |mut total, m| {
            let c = leaf_count(m.virt, m.phys, m.len, m.max_page);
            total.size_4k += c.size_4k;
            total.size_2m += c.size_2m;
            total.size_1g += c.size_1g;
            total
        })
}
