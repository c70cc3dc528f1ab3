//! The kernel's virtual address space: one table, both paging modes.
//!
//! baton follows Linux's x86_64 layout (`Documentation/arch/x86/x86_64/mm.rst`)
//! so that its ptdump output, its numbers and its habits read the same as
//! Linux's. The per-mode regions move with the paging mode; everything from
//! the EFI window up is identical in both modes and lives in the last
//! top-level entry, so one PML4/PML5 slot carries the kernel image, modules,
//! EFI window and fixmap.
//!
//! ```text
//!  4-level (48-bit)        5-level (57-bit)        size (4 / 5)     region
//!  ----------------------  ----------------------  ---------------  --------------------------------
//!  0x0000_0000_0000_0000   0x0000_0000_0000_0000   128 TiB / 64 PiB lower half: empty after the handoff
//!  0x0000_8000_0000_0000   0x0100_0000_0000_0000                    .. non-canonical ..
//!  0xffff_8000_0000_0000   0xff00_0000_0000_0000   8 TiB / 4 PiB    guard hole (Limine's HHDM before
//!                                                                   the switch; never mapped after)
//!  0xffff_8800_0000_0000   0xff10_0000_0000_0000   0.5 TiB/0.25 PiB LDT remap (reserved)
//!  0xffff_8880_0000_0000   0xff11_0000_0000_0000   64 TiB / 32 PiB  physmap (page_offset_base)
//!  0xffff_c880_0000_0000   0xff91_0000_0000_0000                    .. unused hole ..
//!  0xffff_c900_0000_0000   0xffa0_0000_0000_0000   32 TiB/12.5 PiB  vmalloc / ioremap (vmalloc_base)
//!  0xffff_e900_0000_0000   0xffd2_0000_0000_0000                    .. unused hole ..
//!  0xffff_ea00_0000_0000   0xffd4_0000_0000_0000   1 TiB / 0.5 PiB  vmemmap (vmemmap_base)
//!  0xffff_eb00_0000_0000   0xffd6_0000_0000_0000                    .. unused hole (KASAN, cpu entry
//!                                                                   area, espfix in Linux) ..
//!  ---------------- identical in both modes from here on (last top-level entry) ----------------
//!  0xffff_ffef_0000_0000                           64 GiB           EFI runtime window (EFI_VA_END),
//!                                                                   filled top-down from EFI_VA_START
//!  0xffff_ffff_0000_0000                                            .. unused hole (EFI_VA_START) ..
//!  0xffff_ffff_8000_0000                           512 MiB          kernel image (__START_KERNEL_map)
//!  0xffff_ffff_a000_0000                           1520 MiB         modules (reserved)
//!  0xffff_ffff_ff00_0000                           14 MiB           fixmap: the framebuffer window
//!                                                                   (see plan::framebuffer), the rest
//!                                                                   and the vsyscall slot reserved
//!  0xffff_ffff_ffe0_0000                           2 MiB            .. unused hole ..
//! ```
//!
//! The table in [`LAYOUT_4`] and [`LAYOUT_5`] is the single source of truth
//! for the fixed layout (`nokaslr`); the compile-time checks below hold it
//! to the rules baton relies on: regions are in address order and
//! disjoint, canonical, the per-mode regions start and end on
//! top-level-entry boundaries, the EFI window is 1 GiB aligned and the
//! kernel image, modules and fixmap 2 MiB aligned.
//!
//! The layout in effect is built once at boot from that table. By default
//! the physmap, vmalloc and the vmemmap move ([`crate::kaslr`], Linux's
//! `kernel_randomize_memory`) to 1 GiB-aligned bases between the LDT remap
//! and the end of the fixed vmemmap, and when Limine loaded the image at a
//! random address the image region grows to the whole top 2 GiB
//! ([`Layout::with_relocated_image`]). [`Layout::validate`] checks any
//! layout against the rules every one keeps: those above, with 1 GiB
//! alignment for the regions that move and page alignment at the top.

use core::fmt;

use x86_64::PhysAddr;

use crate::Levels;

mod rules;

pub use rules::LayoutError;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

// ---------------------------------------------------------------------------
// The constants shared by both modes (mm.rst's "identical layout" part).
// ---------------------------------------------------------------------------

/// The lowest address of the EFI runtime window (Linux's `EFI_VA_END`, -68 GiB).
pub const EFI_VA_END: u64 = 0xffff_ffef_0000_0000;
/// The end (exclusive) of the EFI runtime window, where its top-down
/// allocation starts (Linux's `EFI_VA_START`, -4 GiB).
pub const EFI_VA_START: u64 = 0xffff_ffff_0000_0000;
/// The kernel image's base (Linux's `__START_KERNEL_map`, -2 GiB): baton's
/// ELF is linked here, and Limine loads it here unless its KASLR slides
/// it higher (up to [`KASLR_IMAGE_END`]).
pub const KERNEL_IMAGE_START: u64 = 0xffff_ffff_8000_0000;
/// The most the kernel image may span (Linux's `KERNEL_IMAGE_SIZE`).
pub const KERNEL_IMAGE_SIZE: u64 = 512 * MIB;
/// The modules area's start (Linux's `MODULES_VADDR`).
pub const MODULES_START: u64 = KERNEL_IMAGE_START + KERNEL_IMAGE_SIZE;
/// The modules area's end, exclusive (Linux's `MODULES_END`, -16 MiB).
pub const MODULES_END: u64 = 0xffff_ffff_ff00_0000;
/// The end (exclusive) of the fixmap area. Linux sizes its fixmap at build
/// time below `FIXADDR_TOP`; baton reserves the whole stretch up to the
/// final 2 MiB hole, vsyscall slot included.
pub const FIXMAP_END: u64 = 0xffff_ffff_ffe0_0000;
/// The fixmap's size (14 MiB), the framebuffer window's limit.
pub const FIXMAP_SIZE: u64 = FIXMAP_END - MODULES_END;

/// The end (exclusive) of the space Limine may load a relocatable kernel
/// image into: its KASLR keeps the whole image between
/// [`KERNEL_IMAGE_START`] and the top of the address space, so (pages
/// being its granularity) the last page is the one it can never use.
pub const KASLR_IMAGE_END: u64 = 0u64.wrapping_sub(crate::PAGE_SIZE);

/// Limine's HHDM base under 4-level paging (without KASLR): in the guard hole.
pub const LIMINE_HHDM_4: u64 = 0xffff_8000_0000_0000;
/// Limine's HHDM base under 5-level paging (without KASLR): in the guard hole.
pub const LIMINE_HHDM_5: u64 = 0xff00_0000_0000_0000;

/// The number of regions in a [`Layout`].
pub const REGION_COUNT: usize = 10;

/// The regions the randomisation moves, in address order.
pub const MOVABLE: [RegionKind; 3] = [
    RegionKind::Physmap,
    RegionKind::Vmalloc,
    RegionKind::Vmemmap,
];

// ---------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------

/// The 4-level layout (48-bit virtual addresses).
pub const LAYOUT_4: Layout = Layout {
    levels: Levels::Four,
    regions: [
        // 128 TiB: 256 PML4 entries, all left empty after the handoff.
        VirtRegion::new(RegionKind::LowerHalf, 0, 0x0000_8000_0000_0000),
        // 8 TiB: 16 PML4 entries.
        VirtRegion::new(
            RegionKind::GuardHole,
            0xffff_8000_0000_0000,
            0xffff_8800_0000_0000,
        ),
        // 0.5 TiB: 1 PML4 entry.
        VirtRegion::new(
            RegionKind::LdtRemap,
            0xffff_8800_0000_0000,
            0xffff_8880_0000_0000,
        ),
        // 64 TiB: 128 PML4 entries.
        VirtRegion::new(
            RegionKind::Physmap,
            0xffff_8880_0000_0000,
            0xffff_c880_0000_0000,
        ),
        // 32 TiB: 64 PML4 entries.
        VirtRegion::new(
            RegionKind::Vmalloc,
            0xffff_c900_0000_0000,
            0xffff_e900_0000_0000,
        ),
        // 1 TiB: 2 PML4 entries.
        VirtRegion::new(
            RegionKind::Vmemmap,
            0xffff_ea00_0000_0000,
            0xffff_eb00_0000_0000,
        ),
        VirtRegion::new(RegionKind::EfiRuntime, EFI_VA_END, EFI_VA_START),
        VirtRegion::new(
            RegionKind::KernelImage,
            KERNEL_IMAGE_START,
            KERNEL_IMAGE_START + KERNEL_IMAGE_SIZE,
        ),
        VirtRegion::new(RegionKind::Modules, MODULES_START, MODULES_END),
        VirtRegion::new(RegionKind::Fixmap, MODULES_END, FIXMAP_END),
    ],
};

/// The 5-level layout (57-bit virtual addresses).
pub const LAYOUT_5: Layout = Layout {
    levels: Levels::Five,
    regions: [
        // 64 PiB: 256 PML5 entries.
        VirtRegion::new(RegionKind::LowerHalf, 0, 0x0100_0000_0000_0000),
        // 4 PiB: 16 PML5 entries.
        VirtRegion::new(
            RegionKind::GuardHole,
            0xff00_0000_0000_0000,
            0xff10_0000_0000_0000,
        ),
        // 0.25 PiB: 1 PML5 entry.
        VirtRegion::new(
            RegionKind::LdtRemap,
            0xff10_0000_0000_0000,
            0xff11_0000_0000_0000,
        ),
        // 32 PiB: 128 PML5 entries.
        VirtRegion::new(
            RegionKind::Physmap,
            0xff11_0000_0000_0000,
            0xff91_0000_0000_0000,
        ),
        // 12.5 PiB: 50 PML5 entries.
        VirtRegion::new(
            RegionKind::Vmalloc,
            0xffa0_0000_0000_0000,
            0xffd2_0000_0000_0000,
        ),
        // 0.5 PiB: 2 PML5 entries.
        VirtRegion::new(
            RegionKind::Vmemmap,
            0xffd4_0000_0000_0000,
            0xffd6_0000_0000_0000,
        ),
        VirtRegion::new(RegionKind::EfiRuntime, EFI_VA_END, EFI_VA_START),
        VirtRegion::new(
            RegionKind::KernelImage,
            KERNEL_IMAGE_START,
            KERNEL_IMAGE_START + KERNEL_IMAGE_SIZE,
        ),
        VirtRegion::new(RegionKind::Modules, MODULES_START, MODULES_END),
        VirtRegion::new(RegionKind::Fixmap, MODULES_END, FIXMAP_END),
    ],
};

// ---------------------------------------------------------------------------
// Compile-time checks.
// ---------------------------------------------------------------------------

const _: () = LAYOUT_4.check();
const _: () = LAYOUT_5.check();
// The sizes the design promises.
const _: () = assert!(LAYOUT_4.physmap_size() == 64 * TIB);
const _: () = assert!(LAYOUT_5.physmap_size() == 32 * 1024 * TIB);
const _: () = assert!(LAYOUT_4.region(RegionKind::Vmalloc).size() == 32 * TIB);
const _: () = assert!(LAYOUT_5.region(RegionKind::Vmalloc).size() == 12 * 1024 * TIB + 512 * TIB);
const _: () = assert!(LAYOUT_4.region(RegionKind::Vmemmap).size() == TIB);
const _: () = assert!(LAYOUT_5.region(RegionKind::Vmemmap).size() == 512 * TIB);
const _: () = assert!(EFI_VA_START - EFI_VA_END == 64 * GIB);
const _: () = assert!(EFI_VA_START == 0u64.wrapping_sub(4 * GIB));
const _: () = assert!(KERNEL_IMAGE_START == 0u64.wrapping_sub(2 * GIB));
const _: () = assert!(MODULES_END - MODULES_START == 1520 * MIB);
// Limine's HHDM sits in the guard hole, so nothing of it survives the switch.
const _: () = assert!(matches!(
    LAYOUT_4.region_of(LIMINE_HHDM_4),
    Some(VirtRegion {
        kind: RegionKind::GuardHole,
        ..
    })
));
const _: () = assert!(matches!(
    LAYOUT_5.region_of(LIMINE_HHDM_5),
    Some(VirtRegion {
        kind: RegionKind::GuardHole,
        ..
    })
));

// ---------------------------------------------------------------------------
// Types.
// ---------------------------------------------------------------------------

/// What a region of the address space is for. The discriminant is the
/// region's index in [`Layout::regions`], which is also address order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// The lower half: user space in Linux, empty in baton after the handoff.
    LowerHalf = 0,
    /// The guard hole at the bottom of the higher half (Limine's HHDM lives
    /// here before the switch); never mapped.
    GuardHole,
    /// Linux's LDT remap for PTI; reserved, never mapped.
    LdtRemap,
    /// The direct map of physical memory, at `page_offset_base`.
    Physmap,
    /// vmalloc and ioremap space, at `vmalloc_base`.
    Vmalloc,
    /// The `struct page` array, at `vmemmap_base`.
    Vmemmap,
    /// The EFI runtime services window, filled top-down.
    EfiRuntime,
    /// The kernel image, at `__START_KERNEL_map`.
    KernelImage,
    /// Module space; reserved.
    Modules,
    /// The fixmap: the framebuffer window for the screen console from its
    /// start, the rest (vsyscall slot included) reserved.
    Fixmap,
}

impl RegionKind {
    /// A short lower-case name for logs and statistics.
    pub const fn name(self) -> &'static str {
        match self {
            RegionKind::LowerHalf => "lower half",
            RegionKind::GuardHole => "guard hole",
            RegionKind::LdtRemap => "LDT remap",
            RegionKind::Physmap => "physmap",
            RegionKind::Vmalloc => "vmalloc",
            RegionKind::Vmemmap => "vmemmap",
            RegionKind::EfiRuntime => "EFI runtime",
            RegionKind::KernelImage => "kernel image",
            RegionKind::Modules => "modules",
            RegionKind::Fixmap => "fixmap",
        }
    }

    /// The section marker Linux's ptdump prints where this region starts
    /// (`arch/x86/mm/dump_pagetables.c`). Linux has no marker of its own for
    /// the guard hole: its "Kernel Space" marker starts at `1 << 63`, and the
    /// guard hole is the first canonical stretch after it.
    pub const fn marker(self) -> &'static str {
        match self {
            RegionKind::LowerHalf => "User Space",
            RegionKind::GuardHole => "Kernel Space",
            RegionKind::LdtRemap => "LDT remap",
            RegionKind::Physmap => "Low Kernel Mapping",
            RegionKind::Vmalloc => "vmalloc() Area",
            RegionKind::Vmemmap => "Vmemmap",
            RegionKind::EfiRuntime => "EFI Runtime Services",
            RegionKind::KernelImage => "High Kernel Mapping",
            RegionKind::Modules => "Modules",
            RegionKind::Fixmap => "Fixmap Area",
        }
    }
}

/// One region of the address space: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtRegion {
    /// What the region is for.
    pub kind: RegionKind,
    /// [`RegionKind::name`].
    pub name: &'static str,
    /// [`RegionKind::marker`]: the ptdump section header.
    pub marker: &'static str,
    /// The first address.
    pub start: u64,
    /// The end, exclusive. No region reaches the top of the address space,
    /// so this never wraps.
    pub end: u64,
}

impl VirtRegion {
    const fn new(kind: RegionKind, start: u64, end: u64) -> Self {
        VirtRegion {
            kind,
            name: kind.name(),
            marker: kind.marker(),
            start,
            end,
        }
    }

    /// The size in bytes.
    pub const fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Whether `va` lies in the region.
    pub const fn contains(&self, va: u64) -> bool {
        self.start <= va && va < self.end
    }
}

/// The address space of one paging mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    levels: Levels,
    regions: [VirtRegion; REGION_COUNT],
}

impl Layout {
    /// Linux's fixed table for `levels` (what `nokaslr` keeps, and what the
    /// randomisation starts from).
    pub const fn fixed(levels: Levels) -> &'static Layout {
        match levels {
            Levels::Four => &LAYOUT_4,
            Levels::Five => &LAYOUT_5,
        }
    }

    /// This layout with the physmap, vmalloc and the vmemmap at `spans`
    /// (`[start, end)` each, in that order), checked.
    ///
    /// # Errors
    ///
    /// The rule the result would break (see [`validate`](Self::validate)).
    pub fn with_movable(&self, spans: [(u64, u64); 3]) -> Result<Layout, LayoutError> {
        let mut layout = *self;
        for (kind, (start, end)) in MOVABLE.into_iter().zip(spans) {
            layout.regions[kind as usize] = VirtRegion::new(kind, start, end);
        }
        layout.validate()?;
        Ok(layout)
    }

    /// This layout for an image Limine's KASLR loaded elsewhere than its
    /// link address, ending at `image_end` (exclusive): the kernel image
    /// region grows to cover where Limine may load a relocatable image, and
    /// the modules area (which baton never maps) is left empty.
    ///
    /// The fixmap, which holds the framebuffer window, keeps its fixed
    /// place when the image ends below it, as it does on all but the
    /// highest slides; the image region then ends where the fixmap starts.
    /// An image in the fixmap's way leaves no room above it: the image
    /// region then runs to [`KASLR_IMAGE_END`], the fixmap is empty and
    /// the framebuffer window goes to the start of the image region
    /// instead, which such an image is far above (see
    /// [`framebuffer_area`](Self::framebuffer_area)).
    pub fn with_relocated_image(&self, image_end: u64) -> Layout {
        let mut layout = *self;
        for (kind, start, end) in relocated_top(image_end > MODULES_END) {
            layout.regions[kind as usize] = VirtRegion::new(kind, start, end);
        }
        layout
    }

    /// Whether the kernel image, modules and fixmap regions are `top`.
    const fn has_top(&self, top: [(RegionKind, u64, u64); 3]) -> bool {
        let mut i = 0;
        while i < top.len() {
            let (kind, start, end) = top[i];
            let r = self.region(kind);
            if r.start != start || r.end != end {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Where the framebuffer window may go, `[start, end)`: the fixmap, or
    /// where a relocated image has left the fixmap empty, as much space
    /// at the start of the image region (the image lies at its top).
    pub const fn framebuffer_area(&self) -> (u64, u64) {
        let fixmap = self.region(RegionKind::Fixmap);
        if fixmap.start < fixmap.end {
            (fixmap.start, fixmap.end)
        } else {
            (KERNEL_IMAGE_START, KERNEL_IMAGE_START + FIXMAP_SIZE)
        }
    }

    /// Whether this is Linux's fixed table.
    pub fn is_fixed(&self) -> bool {
        self == Layout::fixed(self.levels)
    }

    /// Whether the kernel image region is the one for an image Limine
    /// relocated ([`with_relocated_image`](Self::with_relocated_image)).
    pub const fn image_relocated(&self) -> bool {
        let end = self.region(RegionKind::KernelImage).end;
        end == MODULES_END || end == KASLR_IMAGE_END
    }

    /// The paging mode this layout belongs to.
    pub const fn levels(&self) -> Levels {
        self.levels
    }

    /// All regions, in address order (for ptdump markers and per-region
    /// statistics). Addresses between them are unused holes.
    pub const fn regions(&self) -> &[VirtRegion; REGION_COUNT] {
        &self.regions
    }

    /// Linux's ptdump markers for baton's layout, `(start, name)` in
    /// ascending order: each region's [`marker`](RegionKind::marker) where
    /// it starts, and Linux's "End Modules" where the modules area ends,
    /// which baton's fixmap starts at too ("End Modules" first, as in
    /// Linux's `address_markers`). Linux's KASAN, CPU entry area and ESPfix
    /// markers have no region in baton.
    pub const fn ptdump_markers(&self) -> [(u64, &'static str); REGION_COUNT + 1] {
        let mut out = [(0, ""); REGION_COUNT + 1];
        let mut i = 0;
        let mut o = 0;
        while i < REGION_COUNT {
            let r = &self.regions[i];
            if matches!(r.kind, RegionKind::Fixmap) {
                out[o] = (self.region(RegionKind::Modules).end, "End Modules");
                o += 1;
            }
            out[o] = (r.start, r.marker);
            o += 1;
            i += 1;
        }
        out
    }

    /// The region of kind `kind`.
    pub const fn region(&self, kind: RegionKind) -> &VirtRegion {
        &self.regions[kind as usize]
    }

    /// The region `va` lies in, or `None` for holes and non-canonical
    /// addresses.
    pub const fn region_of(&self, va: u64) -> Option<&VirtRegion> {
        let mut i = 0;
        while i < REGION_COUNT {
            let region = &self.regions[i];
            if region.contains(va) {
                return Some(region);
            }
            i += 1;
        }
        None
    }

    /// The end (exclusive) of the lower half.
    pub const fn lower_half_end(&self) -> u64 {
        self.region(RegionKind::LowerHalf).end
    }

    /// The start of the direct map (Linux's `page_offset_base`): physical
    /// address 0 appears here.
    pub const fn page_offset_base(&self) -> u64 {
        self.region(RegionKind::Physmap).start
    }

    /// The end (exclusive) of the direct map.
    pub const fn physmap_end(&self) -> u64 {
        self.region(RegionKind::Physmap).end
    }

    /// How much physical memory the direct map can cover: physical addresses
    /// from 0 up to this (exclusive).
    pub const fn physmap_size(&self) -> u64 {
        self.region(RegionKind::Physmap).size()
    }

    /// The start of vmalloc / ioremap space (Linux's `vmalloc_base`).
    pub const fn vmalloc_base(&self) -> u64 {
        self.region(RegionKind::Vmalloc).start
    }

    /// The end (exclusive) of vmalloc / ioremap space.
    pub const fn vmalloc_end(&self) -> u64 {
        self.region(RegionKind::Vmalloc).end
    }

    /// The start of the vmemmap (Linux's `vmemmap_base`).
    pub const fn vmemmap_base(&self) -> u64 {
        self.region(RegionKind::Vmemmap).start
    }

    /// The end (exclusive) of the vmemmap.
    pub const fn vmemmap_end(&self) -> u64 {
        self.region(RegionKind::Vmemmap).end
    }

    /// The lowest address of the EFI runtime window ([`EFI_VA_END`]).
    pub const fn efi_window_start(&self) -> u64 {
        self.region(RegionKind::EfiRuntime).start
    }

    /// The end (exclusive) of the EFI runtime window ([`EFI_VA_START`]).
    pub const fn efi_window_end(&self) -> u64 {
        self.region(RegionKind::EfiRuntime).end
    }

    /// Where the top-down allocation of EFI runtime regions starts: each
    /// region is placed just below the previous one, starting below this.
    pub const fn efi_top_down_start(&self) -> u64 {
        self.efi_window_end()
    }

    /// The kernel image's base.
    pub const fn kernel_image_start(&self) -> u64 {
        self.region(RegionKind::KernelImage).start
    }

    /// The end (exclusive) of the space the kernel image may occupy.
    pub const fn kernel_image_end(&self) -> u64 {
        self.region(RegionKind::KernelImage).end
    }

    /// The start of module space.
    pub const fn modules_start(&self) -> u64 {
        self.region(RegionKind::Modules).start
    }

    /// The end (exclusive) of module space.
    pub const fn modules_end(&self) -> u64 {
        self.region(RegionKind::Modules).end
    }

    /// The direct-map address of physical address `pa`.
    ///
    /// # Errors
    ///
    /// [`PhysmapError::BeyondPhysmap`] if `pa` is at or above
    /// [`physmap_size`](Self::physmap_size): that is an error, never a wrap
    /// into the next region.
    pub const fn phys_to_virt(&self, pa: PhysAddr) -> Result<u64, PhysmapError> {
        let phys = pa.as_u64();
        if phys >= self.physmap_size() {
            return Err(PhysmapError::BeyondPhysmap {
                phys,
                physmap_size: self.physmap_size(),
            });
        }
        Ok(self.page_offset_base() + phys)
    }

    /// The direct-map address of the physical range `[pa, pa + len)`, after
    /// checking that all of it fits in the direct map.
    ///
    /// # Errors
    ///
    /// [`PhysmapError::RangeOverflow`] if `pa + len` overflows;
    /// [`PhysmapError::BeyondPhysmap`] if the range starts at or ends beyond
    /// [`physmap_size`](Self::physmap_size) (an empty range must still start
    /// inside).
    pub const fn phys_range_to_virt(&self, pa: PhysAddr, len: u64) -> Result<u64, PhysmapError> {
        let phys = pa.as_u64();
        let Some(end) = phys.checked_add(len) else {
            return Err(PhysmapError::RangeOverflow { phys, len });
        };
        if end > self.physmap_size() {
            return Err(PhysmapError::BeyondPhysmap {
                phys: end - 1,
                physmap_size: self.physmap_size(),
            });
        }
        self.phys_to_virt(pa)
    }

    /// The physical address behind direct-map address `va`.
    ///
    /// # Errors
    ///
    /// [`PhysmapError::NotInPhysmap`] if `va` is outside the direct map;
    /// [`PhysmapError::NotAPhysAddr`] if it is inside but beyond the 52-bit
    /// physical address space (possible only in the 32 PiB 5-level physmap).
    pub const fn virt_to_phys(&self, va: u64) -> Result<PhysAddr, PhysmapError> {
        if !self.region(RegionKind::Physmap).contains(va) {
            return Err(PhysmapError::NotInPhysmap { virt: va });
        }
        let phys = va - self.page_offset_base();
        match PhysAddr::try_new(phys) {
            Ok(pa) => Ok(pa),
            Err(_) => Err(PhysmapError::NotAPhysAddr { phys }),
        }
    }

    /// Panics (at compile time, where it is called) unless the fixed table
    /// obeys [`validate`](Self::validate)'s rules and the stricter ones
    /// only it promises (see the module documentation).
    const fn check(&self) {
        assert!(matches!(self.validate(), Ok(())), "the table breaks a rule");
        let levels = self.levels;
        let mut i = 0;
        while i < REGION_COUNT {
            let r = &self.regions[i];
            let align = if (i as u64) < RegionKind::EfiRuntime as u64 {
                // Per-mode regions own whole top-level entries, like Linux's.
                levels.top_entry_span()
            } else if (i as u64) > RegionKind::EfiRuntime as u64 {
                // Large-page boundaries.
                2 * MIB
            } else {
                GIB
            };
            assert!(
                r.start.is_multiple_of(align) && r.end.is_multiple_of(align),
                "region misaligned"
            );
            assert!(r.start < r.end, "empty region");
            i += 1;
        }
        assert!(self.regions[0].start == 0, "the lower half starts at 0");
        assert!(
            self.regions[0].end == 1 << (levels.va_bits() - 1),
            "the lower half spans the canonical lower half"
        );
        // The shared top regions sit in the last top-level entry, so the
        // tables of both modes (and any later address space) can share one
        // subtree for them.
        let last_entry = 0u64.wrapping_sub(levels.top_entry_span());
        assert!(
            self.region(RegionKind::EfiRuntime).start >= last_entry,
            "top regions leave the last top-level entry"
        );
        // Linux's direct map spans a power of two.
        assert!(self.physmap_size().is_power_of_two());
    }
}

/// Why a physical address has no direct-map address, or the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysmapError {
    /// The physical address (or the last byte of the range) lies at or above
    /// the direct map's size.
    BeyondPhysmap {
        /// The offending physical address.
        phys: u64,
        /// The direct map's size.
        physmap_size: u64,
    },
    /// `phys + len` overflows.
    RangeOverflow {
        /// The range's start.
        phys: u64,
        /// The range's length.
        len: u64,
    },
    /// The virtual address is not in the direct map.
    NotInPhysmap {
        /// The offending virtual address.
        virt: u64,
    },
    /// The direct-map address corresponds to no 52-bit physical address.
    NotAPhysAddr {
        /// The would-be physical address.
        phys: u64,
    },
}

impl fmt::Display for PhysmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PhysmapError::BeyondPhysmap { phys, physmap_size } => write!(
                f,
                "physical address {phys:#x} is beyond the {physmap_size:#x}-byte direct map"
            ),
            PhysmapError::RangeOverflow { phys, len } => {
                write!(f, "physical range {phys:#x} + {len:#x} overflows")
            }
            PhysmapError::NotInPhysmap { virt } => {
                write!(f, "virtual address {virt:#x} is not in the direct map")
            }
            PhysmapError::NotAPhysAddr { phys } => {
                write!(f, "{phys:#x} is beyond the 52-bit physical address space")
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// The kernel image, modules and fixmap regions of a layout whose image
/// Limine relocated: the image below the fixmap, which stays where it is,
/// or (`whole_top`) an image in the fixmap's way, with the whole top.
const fn relocated_top(whole_top: bool) -> [(RegionKind, u64, u64); 3] {
    let (image_end, fixmap_end) = if whole_top {
        (KASLR_IMAGE_END, KASLR_IMAGE_END)
    } else {
        (MODULES_END, FIXMAP_END)
    };
    [
        (RegionKind::KernelImage, KERNEL_IMAGE_START, image_end),
        (RegionKind::Modules, image_end, image_end),
        (RegionKind::Fixmap, image_end, fixmap_end),
    ]
}
