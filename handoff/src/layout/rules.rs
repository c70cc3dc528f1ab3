//! The rules every layout in effect obeys, fixed or randomised, checked at
//! run time by [`Layout::validate`] (and at compile time for the fixed
//! tables, with the stricter alignment only they promise).

use core::fmt;

use super::{GIB, Layout, REGION_COUNT, RegionKind, relocated_top};
use crate::{Levels, PAGE_SIZE};

/// Why a layout breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// Region `index` is not of the kind its slot holds.
    KindOrder {
        /// The slot.
        index: usize,
    },
    /// A region that must not be empty is empty or inverted.
    Empty {
        /// The region.
        kind: RegionKind,
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// A region is not canonical in the layout's paging mode.
    NotCanonical {
        /// The region.
        kind: RegionKind,
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// A region's start or end is not aligned as its kind requires.
    Misaligned {
        /// The region.
        kind: RegionKind,
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
        /// The alignment required.
        align: u64,
    },
    /// Two neighbouring regions overlap or are out of address order.
    Overlap {
        /// The lower region.
        first: RegionKind,
        /// Where it ends.
        first_end: u64,
        /// The next region.
        second: RegionKind,
        /// Where it starts.
        second_start: u64,
    },
    /// A movable region leaves the space between the LDT remap and the end
    /// of the fixed table's vmemmap.
    OutOfBounds {
        /// The region.
        kind: RegionKind,
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
        /// The space's start.
        space_start: u64,
        /// The space's end.
        space_end: u64,
    },
    /// A region that stays fixed is not where the fixed table has it.
    Moved {
        /// The region.
        kind: RegionKind,
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::KindOrder { index } => {
                write!(f, "region {index} is not of the kind its slot holds")
            }
            LayoutError::Empty { kind, start, end } => {
                write!(f, "{} {start:#x}-{end:#x} is empty", kind.name())
            }
            LayoutError::NotCanonical { kind, start, end } => {
                write!(f, "{} {start:#x}-{end:#x} is not canonical", kind.name())
            }
            LayoutError::Misaligned {
                kind,
                start,
                end,
                align,
            } => write!(
                f,
                "{} {start:#x}-{end:#x} is not aligned to {align:#x}",
                kind.name()
            ),
            LayoutError::Overlap {
                first,
                first_end,
                second,
                second_start,
            } => write!(
                f,
                "{} ends at {first_end:#x}, after {} starts at {second_start:#x}",
                first.name(),
                second.name()
            ),
            LayoutError::OutOfBounds {
                kind,
                start,
                end,
                space_start,
                space_end,
            } => write!(
                f,
                "{} {start:#x}-{end:#x} leaves {space_start:#x}-{space_end:#x}",
                kind.name()
            ),
            LayoutError::Moved { kind, start, end } => write!(
                f,
                "{} {start:#x}-{end:#x} is not where the fixed table has it",
                kind.name()
            ),
        }
    }
}

impl RegionKind {
    /// Whether the randomisation moves this region.
    pub const fn is_movable(self) -> bool {
        matches!(
            self,
            RegionKind::Physmap | RegionKind::Vmalloc | RegionKind::Vmemmap
        )
    }

    /// The alignment every layout keeps for the region's start and end in
    /// `levels`. The fixed tables keep more (see the compile-time checks).
    pub(super) const fn alignment(self, levels: Levels) -> u64 {
        match self {
            // Whole top-level entries: nothing of the lower half, the guard
            // hole or the LDT remap shares a table with a mapped region.
            RegionKind::LowerHalf | RegionKind::GuardHole | RegionKind::LdtRemap => {
                levels.top_entry_span()
            }
            // The randomisation's granularity: the physmap keeps its 1 GiB
            // pages. Linux's EFI_VA_{START,END} are 1 GiB aligned too.
            RegionKind::Physmap
            | RegionKind::Vmalloc
            | RegionKind::Vmemmap
            | RegionKind::EfiRuntime => GIB,
            // Pages: a relocated image may end on any page.
            RegionKind::KernelImage | RegionKind::Modules | RegionKind::Fixmap => PAGE_SIZE,
        }
    }

    /// Whether a layout may leave the region empty: the modules area and
    /// the fixmap, which baton reserves but never maps, give way to an
    /// image Limine may load anywhere in the top 2 GiB.
    const fn may_be_empty(self) -> bool {
        matches!(self, RegionKind::Modules | RegionKind::Fixmap)
    }
}

impl Layout {
    /// Checks the rules: regions in kind and address order, disjoint,
    /// canonical, aligned; the physmap, vmalloc and the vmemmap inside
    /// [`movable_space`](Self::movable_space); the lower half, guard hole,
    /// LDT remap and EFI window where the fixed table has them; the kernel
    /// image region either the fixed one or, for an image Limine relocated,
    /// the top 2 GiB up to the fixed fixmap, or up to [`KASLR_IMAGE_END`](super::KASLR_IMAGE_END)
    /// with the modules area and fixmap empty there.
    ///
    /// # Errors
    ///
    /// The first rule broken, in region order.
    pub const fn validate(&self) -> Result<(), LayoutError> {
        let mut i = 0;
        while i < REGION_COUNT {
            if let Err(e) = self.validate_region(i) {
                return Err(e);
            }
            i += 1;
        }
        self.validate_top()
    }

    /// The rules for region `i` on its own and against its lower neighbour.
    const fn validate_region(&self, i: usize) -> Result<(), LayoutError> {
        let levels = self.levels;
        let r = &self.regions[i];
        let (kind, start, end) = (r.kind, r.start, r.end);
        if kind as usize != i {
            return Err(LayoutError::KindOrder { index: i });
        }
        let empty = start == end && kind.may_be_empty();
        if start >= end && !empty {
            return Err(LayoutError::Empty { kind, start, end });
        }
        let canonical = empty || (levels.is_canonical(start) && levels.is_canonical(end - 1));
        if !canonical {
            return Err(LayoutError::NotCanonical { kind, start, end });
        }
        let align = kind.alignment(levels);
        if !start.is_multiple_of(align) || !end.is_multiple_of(align) {
            return Err(LayoutError::Misaligned {
                kind,
                start,
                end,
                align,
            });
        }
        if i > 0 && self.regions[i - 1].end > start {
            return Err(LayoutError::Overlap {
                first: self.regions[i - 1].kind,
                first_end: self.regions[i - 1].end,
                second: kind,
                second_start: start,
            });
        }
        let fixed = Layout::fixed(levels).region(kind);
        if kind.is_movable() {
            let (space_start, space_end) = self.movable_space();
            if start < space_start || end > space_end {
                return Err(LayoutError::OutOfBounds {
                    kind,
                    start,
                    end,
                    space_start,
                    space_end,
                });
            }
        } else if (fixed.start != start || fixed.end != end) && kind.is_below_the_image() {
            return Err(LayoutError::Moved { kind, start, end });
        }
        Ok(())
    }

    /// The kernel image, modules and fixmap: Linux's fixed table, or one
    /// of the two shapes for a relocated image (see
    /// [`with_relocated_image`](Self::with_relocated_image)).
    const fn validate_top(&self) -> Result<(), LayoutError> {
        let fixed = Layout::fixed(self.levels);
        let mut i = RegionKind::KernelImage as usize;
        let mut as_fixed = true;
        while i < REGION_COUNT {
            let (a, b) = (&self.regions[i], &fixed.regions[i]);
            as_fixed = as_fixed && a.start == b.start && a.end == b.end;
            i += 1;
        }
        let image = self.region(RegionKind::KernelImage);
        if as_fixed || self.has_top(relocated_top(false)) || self.has_top(relocated_top(true)) {
            return Ok(());
        }
        Err(LayoutError::Moved {
            kind: RegionKind::KernelImage,
            start: image.start,
            end: image.end,
        })
    }

    /// Where the physmap, vmalloc and the vmemmap may lie in this paging
    /// mode: from the end of the LDT remap (the start of Linux's fixed
    /// physmap, `__PAGE_OFFSET_BASE`) to the end of the fixed table's
    /// vmemmap.
    pub const fn movable_space(&self) -> (u64, u64) {
        let fixed = Layout::fixed(self.levels);
        (
            fixed.region(RegionKind::LdtRemap).end,
            fixed.region(RegionKind::Vmemmap).end,
        )
    }
}

impl RegionKind {
    /// The fixed regions checked one by one (the top three are checked
    /// together: they change together when the image is relocated).
    const fn is_below_the_image(self) -> bool {
        matches!(
            self,
            RegionKind::LowerHalf
                | RegionKind::GuardHole
                | RegionKind::LdtRemap
                | RegionKind::EfiRuntime
        )
    }
}
