//! The framebuffer window: baton's own mapping of the firmware's
//! framebuffer, for the screen console, in the fixmap.
//!
//! Limine's HHDM maps the framebuffer until the CR3 switch and not after.
//! Like Linux's early fixmap (`early_ioremap`), the plan maps it itself, so
//! that the console draws on through the switch and up to the memory
//! services: built, checked before and after the switch, and held to W^X
//! with everything else. The framebuffer is device memory, never RAM: the
//! window is refused over RAM, which the physmap maps write-back, and
//! [`verify`](super::verify) checks every leaf of it against the memory
//! map. It is mapped write-combining through the PAT (uncached on a CPU
//! without a PAT entry for WC), read-write, never executable.
//!
//! The window starts at the fixmap's start (or, where a relocated kernel
//! image leaves no fixmap, at the image region's start: see
//! [`Layout::framebuffer_area`]), moved up by the framebuffer's
//! offset within 2 MiB so that 2 MiB pages fit where the framebuffer is
//! aligned; it holds as much of the framebuffer as fits before the
//! area's end (14 MiB: a 1920x1200 screen at 32 bpp; a larger one is
//! mapped in part, and the console uses the rows that fit).

use core::fmt;

use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

use crate::PAGE_SIZE;
use crate::layout::Layout;
use crate::memmap::MemoryMap;
use crate::memtype::{MemType, PageKind, Pat};
use crate::paging::{Mapping, PageSize};

const LARGE: u64 = 2 << 20;

/// The framebuffer as the bootloader describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framebuffer {
    /// Physical address of its first pixel.
    pub phys: u64,
    /// Bytes from the first pixel to the end of the last row
    /// (pitch x height).
    pub len: u64,
}

/// Why the framebuffer gets no window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramebufferError {
    /// It is empty, or its end overflows.
    Empty,
    /// Part of it is RAM, which the physmap maps write-back: another
    /// mapping with another type would alias it.
    Ram {
        /// The first RAM address under it.
        at: u64,
    },
    /// The PAT has neither WC nor UC.
    NoPatEntry,
}

impl fmt::Display for FramebufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FramebufferError::Empty => write!(f, "the framebuffer is empty or wraps around"),
            FramebufferError::Ram { at } => write!(
                f,
                "the framebuffer overlaps RAM at {at:#x}, which the physmap maps write-back"
            ),
            FramebufferError::NoPatEntry => write!(f, "the PAT has no WC or UC entry"),
        }
    }
}

/// Where the plan maps the framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramebufferWindow {
    /// The virtual address of the framebuffer's first byte.
    pub virt: u64,
    /// The bytes of the framebuffer reachable from [`virt`](Self::virt):
    /// all of it, or what fits in the fixmap.
    pub len: u64,
    /// The memory type the window's entries select.
    pub mem_type: MemType,
    /// The page-aligned mapping.
    pub mapping: Mapping,
}

/// Where in `layout`'s [framebuffer area](Layout::framebuffer_area) the
/// page holding `phys` goes.
fn window_start(layout: &Layout, phys: u64) -> u64 {
    layout.framebuffer_area().0 + (phys & !(PAGE_SIZE - 1)) % LARGE
}

/// How many bytes of a framebuffer starting at `phys` the window holds
/// (the area from where its first page goes, less its offset in that
/// page): the console can size itself before the plan is made, as every
/// layout's area has the same size and alignment.
pub fn capacity(layout: &Layout, phys: u64) -> u64 {
    layout.framebuffer_area().1 - window_start(layout, phys) - phys % PAGE_SIZE
}

/// Places `fb` in `layout`'s fixmap with a memory type of `pat`, checking
/// it against `map`. `nx` and `global` are the CPU's NX and global-page
/// support.
pub fn window(
    fb: Framebuffer,
    layout: &Layout,
    map: &MemoryMap,
    pat: &Pat,
    nx: bool,
    global: bool,
) -> Result<FramebufferWindow, FramebufferError> {
    let end = fb
        .phys
        .checked_add(fb.len)
        .filter(|_| fb.len != 0)
        .ok_or(FramebufferError::Empty)?;
    let first = fb.phys & !(PAGE_SIZE - 1);
    let last = end
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(FramebufferError::Empty)?;
    if let Some(at) = map.first_ram_in(first, last) {
        return Err(FramebufferError::Ram { at });
    }
    let (mem_type, cache, max_page) = cache_flags(pat).ok_or(FramebufferError::NoPatEntry)?;
    let virt = window_start(layout, fb.phys);
    let len = (last - first).min(layout.framebuffer_area().1 - virt);
    let mut flags = PageTableFlags::WRITABLE | cache;
    if nx {
        flags |= PageTableFlags::NO_EXECUTE;
    }
    if global {
        flags |= PageTableFlags::GLOBAL;
    }
    let offset = fb.phys - first;
    debug_assert_eq!(len - offset >= fb.len, capacity(layout, fb.phys) >= fb.len);
    Ok(FramebufferWindow {
        virt: virt + offset,
        len: (len - offset).min(fb.len),
        mem_type,
        mapping: Mapping {
            virt,
            phys: PhysAddr::new(first),
            len,
            flags,
            max_page,
        },
    })
}

/// The type, cache bits and largest page for the window: WC where the PAT
/// has it, else UC; through an entry below 4 where one exists, which large
/// pages can select.
fn cache_flags(pat: &Pat) -> Option<(MemType, PageTableFlags, PageSize)> {
    [MemType::Wc, MemType::Uc]
        .into_iter()
        .find_map(|ty| match pat.flags_any_size(ty) {
            Some(flags) => Some((ty, flags, PageSize::Size2M)),
            None => Some((ty, pat.flags_for(ty, PageKind::Size4KiB)?, PageSize::Size4K)),
        })
}
