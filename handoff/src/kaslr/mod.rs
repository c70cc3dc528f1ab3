//! Randomised bases for the physmap, vmalloc and the vmemmap: Linux's
//! `kernel_randomize_memory` (`arch/x86/mm/kaslr.c`), for both paging
//! modes.
//!
//! The three regions keep their order and move within the space between
//! the LDT remap and the end of the fixed table's vmemmap
//! ([`Layout::movable_space`]):
//!
//! 1. **Sizes** ([`Sizes::for_ram`]): the physmap covers the RAM present
//!    (its end rounded up to a TiB) plus [`PHYSMAP_PADDING`] for memory
//!    added later, never more than Linux's maximum; the vmemmap holds a
//!    descriptor for every frame of that physmap, rounded up to a TiB;
//!    vmalloc keeps its fixed size.
//! 2. **Free space**: what the three leave of the space, less a 1 GiB gap
//!    after each of the first two (so neighbours never share a 1 GiB
//!    block, and an overrun from one region faults before the next).
//! 3. **Offsets**, region by region in address order: each may take up to
//!    an equal share of the free space still left (a third, then a half,
//!    then all of it), in whole GiB ([`GRANULE`]); its offset is drawn
//!    uniformly among those slots and taken from the free space.
//!
//! The draws cannot run past the space: the offsets add up to at most the
//! free space. Where baton differs from Linux: the granule is 1 GiB in
//! both paging modes (Linux uses 512 GiB P4D steps under 5-level paging,
//! for its real-mode trampoline; baton starts the other CPUs through
//! Limine and needs no such alignment); each offset is uniform over its
//! slots (Linux reduces a random word modulo the share plus one, then
//! rounds down to a GiB, which makes the last slot rarer); the space ends
//! at the fixed vmemmap's end (Linux's goes on to `CPU_ENTRY_AREA_BASE`,
//! over regions baton does not have); and [`randomise_avoiding`] redraws a
//! layout that would overlap a given range (Limine's HHDM, which Limine
//! itself may have moved out of the guard hole), so that pointers left
//! into it still fault after the switch.

pub mod entropy;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::frames::{DESC_SIZE, GIB_RECORD_SIZE};
use crate::layout::{Layout, LayoutError, MOVABLE, RegionKind};
use crate::paging::PHYS_LIMIT;
use crate::{Levels, PAGE_SIZE};
pub use entropy::{Pool, Rng, Source, Sources};

const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Room the physmap keeps above the RAM present, for memory added later
/// (Linux's `CONFIG_RANDOMIZE_MEMORY_PHYSICAL_PADDING` default, 10 TiB).
pub const PHYSMAP_PADDING: u64 = 10 * TIB;

/// The step of every offset: 1 GiB, so that the physmap keeps its 1 GiB
/// pages (Linux's `PUD_SIZE`).
pub const GRANULE: u64 = GIB;

/// The unmapped gap after the physmap and after vmalloc.
pub const GAP: u64 = GIB;

/// How often [`randomise_avoiding`] draws before giving up.
pub const MAX_TRIES: u32 = 1024;

/// The sizes of the three regions that move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The physmap: how much physical address space it covers.
    pub physmap: u64,
    /// vmalloc.
    pub vmalloc: u64,
    /// The vmemmap.
    pub vmemmap: u64,
}

impl Sizes {
    /// Linux's sizes for RAM ending at `ram_end` (exclusive) in `levels`:
    /// see the module documentation.
    pub fn for_ram(levels: Levels, ram_end: u64) -> Sizes {
        let fixed = Layout::fixed(levels);
        let physmap = (ram_end.div_ceil(TIB).saturating_mul(TIB))
            .saturating_add(PHYSMAP_PADDING)
            .min(physmap_limit(levels));
        Sizes {
            physmap,
            vmalloc: fixed.region(RegionKind::Vmalloc).size(),
            vmemmap: vmemmap_for(physmap).div_ceil(TIB) * TIB,
        }
    }

    /// The sizes in address order.
    pub const fn in_order(&self) -> [u64; 3] {
        [self.physmap, self.vmalloc, self.vmemmap]
    }
}

/// The most physical address space a physmap covers in `levels`: the
/// fixed one, or what 52-bit physical addresses reach if that is less
/// (Linux's `1 << MAX_PHYSMEM_BITS`).
pub fn physmap_limit(levels: Levels) -> u64 {
    Layout::fixed(levels).physmap_size().min(PHYS_LIMIT)
}

/// The bytes a vmemmap needs for a physmap of `physmap` bytes: a
/// descriptor per 4 KiB frame, then a record per GiB (the frame
/// allocator's free 1 GiB blocks).
pub const fn vmemmap_for(physmap: u64) -> u64 {
    physmap / PAGE_SIZE * DESC_SIZE + physmap.div_ceil(1 << 30) * GIB_RECORD_SIZE
}

/// Why no randomised layout came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KaslrError {
    /// The regions and the gaps between them do not fit the space.
    DoesNotFit {
        /// What they need.
        need: u64,
        /// What the space holds.
        space: u64,
    },
    /// A layout breaks a rule.
    Layout(LayoutError),
    /// A region is too small for the RAM present.
    TooSmall {
        /// The region.
        kind: RegionKind,
        /// Its size.
        size: u64,
        /// What it needs.
        need: u64,
    },
    /// Every draw overlapped the range to avoid.
    CannotAvoid {
        /// The range's start.
        start: u64,
        /// Its end.
        end: u64,
    },
}

impl From<LayoutError> for KaslrError {
    fn from(e: LayoutError) -> Self {
        KaslrError::Layout(e)
    }
}

impl fmt::Display for KaslrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KaslrError::DoesNotFit { need, space } => write!(
                f,
                "the regions need {need:#x} bytes; their space holds {space:#x}"
            ),
            KaslrError::Layout(e) => write!(f, "{e}"),
            KaslrError::TooSmall { kind, size, need } => write!(
                f,
                "the {} ({size:#x} bytes) is smaller than the {need:#x} bytes it needs",
                kind.name()
            ),
            KaslrError::CannotAvoid { start, end } => {
                write!(f, "none of {MAX_TRIES} layouts avoids {start:#x}-{end:#x}")
            }
        }
    }
}

/// A randomised layout and how much choice each draw had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Randomised {
    /// The layout.
    pub layout: Layout,
    /// The number of 1 GiB slots each region's offset was drawn from, in
    /// address order.
    pub slots: [u64; 3],
    /// The offset each region got, in slots.
    pub offsets: [u64; 3],
    /// The draws it took ([`randomise_avoiding`]; 1 otherwise).
    pub tries: u32,
}

/// The free space the regions of `sizes` leave in `base`'s movable space,
/// the gaps between them taken out.
///
/// # Errors
///
/// [`KaslrError::DoesNotFit`] when they do not fit at all.
pub fn free_space(base: &Layout, sizes: &Sizes) -> Result<u64, KaslrError> {
    let (start, end) = base.movable_space();
    let need = sizes
        .in_order()
        .iter()
        .try_fold(2 * GAP, |sum, &size| sum.checked_add(size));
    match need {
        Some(need) if need <= end - start => Ok(end - start - need),
        _ => Err(KaslrError::DoesNotFit {
            need: need.unwrap_or(u64::MAX),
            space: end - start,
        }),
    }
}

/// `base` with the physmap, vmalloc and the vmemmap of `sizes` at random
/// offsets drawn from `rng` (see the module documentation). The other
/// regions stay as `base` has them.
///
/// # Errors
///
/// [`KaslrError::DoesNotFit`], or the rule the result breaks (sizes that
/// are not whole GiB).
pub fn randomise(base: &Layout, sizes: &Sizes, rng: &mut Rng) -> Result<Randomised, KaslrError> {
    place(base, sizes, |slots| rng.below(slots))
}

/// [`randomise`] with the offsets chosen by `pick`, given each region's
/// number of slots: the algorithm, apart from where its randomness
/// comes from (tests drive it to its extremes).
fn place(
    base: &Layout,
    sizes: &Sizes,
    mut pick: impl FnMut(u64) -> u64,
) -> Result<Randomised, KaslrError> {
    let mut free = free_space(base, sizes)?;
    let mut at = base.movable_space().0;
    let mut spans = [(0, 0); 3];
    let (mut slots, mut offsets) = ([0; 3], [0; 3]);
    for (i, size) in sizes.in_order().into_iter().enumerate() {
        let share = free / (MOVABLE.len() - i) as u64;
        slots[i] = share / GRANULE + 1;
        offsets[i] = pick(slots[i]).min(slots[i] - 1);
        let offset = offsets[i] * GRANULE;
        free -= offset;
        let start = at + offset;
        spans[i] = (start, start + size);
        at = start + size + GAP;
    }
    Ok(Randomised {
        layout: base.with_movable(spans)?,
        slots,
        offsets,
        tries: 1,
    })
}

/// [`randomise`], drawing again (up to [`MAX_TRIES`] times) while one of
/// the three regions overlaps `[avoid.0, avoid.1)`.
///
/// # Errors
///
/// [`randomise`]'s, and [`KaslrError::CannotAvoid`] when no draw avoids
/// the range.
pub fn randomise_avoiding(
    base: &Layout,
    sizes: &Sizes,
    avoid: (u64, u64),
    rng: &mut Rng,
) -> Result<Randomised, KaslrError> {
    for tries in 1..=MAX_TRIES {
        let drawn = randomise(base, sizes, rng)?;
        if overlapping(&drawn.layout, avoid).is_none() {
            return Ok(Randomised { tries, ..drawn });
        }
    }
    Err(KaslrError::CannotAvoid {
        start: avoid.0,
        end: avoid.1,
    })
}

/// The first of the physmap, vmalloc and the vmemmap that overlaps
/// `[range.0, range.1)`.
pub fn overlapping(layout: &Layout, range: (u64, u64)) -> Option<RegionKind> {
    MOVABLE.into_iter().find(|&kind| {
        let r = layout.region(kind);
        r.start < range.1 && range.0 < r.end
    })
}

/// Checks a layout in effect: its rules ([`Layout::validate`]), and that
/// its physmap covers RAM up to `ram_end` (as far as any physmap can),
/// its vmemmap has a descriptor for every frame of the physmap and
/// vmalloc is as large as the fixed table's.
///
/// # Errors
///
/// The first problem found.
pub fn check(layout: &Layout, ram_end: u64) -> Result<(), KaslrError> {
    layout.validate()?;
    let levels = layout.levels();
    let physmap = layout.physmap_size();
    let needs = [
        (
            RegionKind::Physmap,
            physmap,
            ram_end.min(physmap_limit(levels)),
        ),
        (
            RegionKind::Vmalloc,
            layout.region(RegionKind::Vmalloc).size(),
            Layout::fixed(levels).region(RegionKind::Vmalloc).size(),
        ),
        (
            RegionKind::Vmemmap,
            layout.region(RegionKind::Vmemmap).size(),
            vmemmap_for(physmap.min(PHYS_LIMIT)),
        ),
    ];
    for (kind, size, need) in needs {
        if size < need {
            return Err(KaslrError::TooSmall { kind, size, need });
        }
    }
    Ok(())
}
