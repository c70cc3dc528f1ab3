//! The two contenders, building the same plan into an [`Arena`], and the
//! check that holds what they built to the plan.

use core::fmt;

use handoff::paging::{BuildError, Builder, LeafCount, Mapping, PageSize, TableCount, Walker};
use handoff::phys::{FrameSource, PhysWindow};
use handoff::plan::{Inputs, Plan, Verified, verify};
use x86_64::structures::paging::mapper::{MapToError, Mapper, OffsetPageTable};
use x86_64::structures::paging::{
    Page, PageTableFlags, PhysFrame, Size1GiB, Size2MiB, Size4KiB, page::PageSize as X86PageSize,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::arena::{Arena, Frames};
use crate::maps::LEVELS;

/// What one build produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// The root table.
    pub root: PhysFrame,
    /// Page-table frames taken from the arena, the root included.
    pub frames: u64,
    /// Leaves written, per size.
    pub leaves: LeafCount,
}

/// Why the baseline could not map a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineError {
    /// The page's virtual address.
    pub virt: u64,
    /// The `x86_64` crate's error.
    pub error: String,
}

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "map_to({:#x}): {}", self.virt, self.error)
    }
}

impl std::error::Error for BaselineError {}

/// baton: [`Builder::map`] once per planned mapping, into an emptied arena.
pub fn baton(arena: &mut Arena, mappings: &[Mapping]) -> Result<Built, BuildError> {
    arena.reset();
    let mut builder = Builder::new(&mut arena.window, &mut arena.frames, LEVELS)?;
    for mapping in mappings {
        builder.map(mapping)?;
    }
    let (root, leaves) = (builder.root(), builder.leaves_written());
    Ok(Built {
        root,
        frames: arena.frames.used(),
        leaves,
    })
}

/// The table-entry flags baton gives tables, for the baseline to give its
/// own: leaves alone decide the permissions.
const TABLE_FLAGS: PageTableFlags = PageTableFlags::PRESENT.union(PageTableFlags::WRITABLE);

/// The baseline: the same mappings through the `x86_64` crate's
/// `Mapper::map_to_with_table_flags` on an `OffsetPageTable`, one page at a
/// time, each of the size [`largest_pages`](handoff::paging::largest_pages)
/// chooses, into an emptied arena. `map_to` is that call with the table
/// flags taken from the leaf's (PRESENT, WRITABLE, USER_ACCESSIBLE); giving
/// `TABLE_FLAGS` (PRESENT | WRITABLE) instead makes the tables the same as baton's, entry for
/// entry, where `map_to` would leave those above read-only leaves read-only.
pub fn baseline(arena: &mut Arena, mappings: &[Mapping]) -> Result<Built, BaselineError> {
    arena.reset();
    let root = FrameSource::allocate_frame(&mut arena.frames).ok_or(BaselineError {
        virt: 0,
        error: "no frame for the root".into(),
    })?;
    let offset = arena.window.phys_offset();
    let root_table = arena.window.table_mut(root);
    root_table.zero();
    // SAFETY: the whole arena is reachable at `offset` + its physical
    // addresses (`Window::phys_offset`); the root is a zeroed table and
    // `root_table` is its only reference.
    let mut mapper = unsafe { OffsetPageTable::new(root_table, offset) };
    let mut leaves = LeafCount::default();
    for mapping in mappings {
        let flags = mapping.flags | PageTableFlags::PRESENT;
        for (virt, phys, size) in mapping.pages() {
            let mapped = match size {
                PageSize::Size4K => {
                    leaves.size_4k += 1;
                    map_one::<Size4KiB, _>(&mut mapper, &mut arena.frames, virt, phys, flags)
                }
                PageSize::Size2M => {
                    leaves.size_2m += 1;
                    map_one::<Size2MiB, _>(&mut mapper, &mut arena.frames, virt, phys, flags)
                }
                PageSize::Size1G => {
                    leaves.size_1g += 1;
                    map_one::<Size1GiB, _>(&mut mapper, &mut arena.frames, virt, phys, flags)
                }
            };
            mapped.map_err(|error| BaselineError { virt, error })?;
        }
    }
    Ok(Built {
        root,
        frames: arena.frames.used(),
        leaves,
    })
}

/// One page of size `S` mapped as a kernel using the `x86_64` crate maps
/// it, with baton's table flags (no TLB flush: the tables are not live).
#[inline(always)]
fn map_one<S: X86PageSize + fmt::Debug, M: Mapper<S>>(
    mapper: &mut M,
    frames: &mut Frames,
    virt: u64,
    phys: PhysAddr,
    flags: PageTableFlags,
) -> Result<(), String> {
    let page = Page::<S>::containing_address(VirtAddr::new(virt));
    let frame = PhysFrame::<S>::containing_address(phys);
    // SAFETY: the frame is the plan's, mapped nowhere else in these tables
    // (the plan's mappings are disjoint), and the tables are not live, so
    // no access through them can break.
    match unsafe { mapper.map_to_with_table_flags(page, frame, flags, TABLE_FLAGS, frames) } {
        Ok(flush) => {
            flush.ignore();
            Ok(())
        }
        Err(err) => Err(describe(err)),
    }
}

fn describe<S: X86PageSize + fmt::Debug>(err: MapToError<S>) -> String {
    format!("{err:?}")
}

/// What [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Leaves walked.
    pub leaves: LeafCount,
    /// Tables walked, per level.
    pub tables: TableCount,
}

/// Holds tables built in `arena` to the plan, leaf by leaf with
/// [`handoff::plan::verify`], and checks that the build's own counts agree
/// with the walk. Returns a description of the first mismatch.
pub fn check<W: PhysWindow + ?Sized>(
    window: &W,
    built: &Built,
    plan: &Plan,
    inputs: &Inputs<'_>,
) -> Result<Checked, String> {
    let walker = Walker::new(window, built.root, LEVELS);
    let Verified { leaves, .. } = verify(plan, &walker, inputs).map_err(|e| e.to_string())?;
    if leaves != plan.leaves() || built.leaves != leaves {
        return Err(format!(
            "leaves: plan {:?}, built {:?}, walked {leaves:?}",
            plan.leaves(),
            built.leaves
        ));
    }
    let tables = walker.stats().tables;
    if tables.total() != built.frames {
        return Err(format!(
            "{} frames taken but {} tables reachable",
            built.frames,
            tables.total()
        ));
    }
    Ok(Checked { leaves, tables })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{Machine, Scenario, firmware_map, fragmented_map};

    fn machine(entries: Vec<handoff::memmap::LimineEntry>, gb_pages: bool) -> Machine {
        Machine::new(&Scenario {
            id: String::new(),
            label: String::new(),
            entries,
            gb_pages,
        })
    }

    /// Both contenders build tables that verify, with the minimum number of
    /// frames, and the very same tables.
    #[test]
    fn both_build_the_plan_exactly() {
        for (entries, gb_pages) in [
            (firmware_map(4 << 30), true),
            (firmware_map(4 << 30), false),
            (fragmented_map(256), true),
        ] {
            let m = machine(entries, gb_pages);
            let minimum = m.plan.minimum_tables().total();
            let mut a = Arena::new(minimum as usize);
            let mut b = Arena::new(minimum as usize);
            let ours = baton(&mut a, m.plan.mappings()).unwrap();
            let theirs = baseline(&mut b, m.plan.mappings()).unwrap();
            let checked = check(&a.window, &ours, &m.plan, &m.inputs()).unwrap();
            check(&b.window, &theirs, &m.plan, &m.inputs()).unwrap();
            assert_eq!(checked.tables, m.plan.minimum_tables());
            assert_eq!((ours.frames, theirs.frames), (minimum, minimum));
            for i in 0..minimum {
                let frame = PhysFrame::containing_address(PhysAddr::new(
                    crate::arena::PHYS_BASE + i * handoff::PAGE_SIZE,
                ));
                let (x, y) = (a.window.table(frame), b.window.table(frame));
                assert!(
                    x.iter()
                        .zip(y.iter())
                        .all(|(x, y)| (x.addr(), x.flags()) == (y.addr(), y.flags())),
                    "frame {i} differs"
                );
            }
        }
    }

    #[test]
    fn a_broken_build_fails_the_check() {
        let m = machine(firmware_map(256 << 20), true);
        let mut arena = Arena::new(64);
        let mappings = m.plan.mappings();
        let built = baton(&mut arena, &mappings[..mappings.len() - 1]).unwrap();
        let err = check(&arena.window, &built, &m.plan, &m.inputs()).unwrap_err();
        assert!(err.contains("mapped"), "{err}");
    }
}
