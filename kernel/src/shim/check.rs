//! The checks the new tables pass before the switch (read through
//! Limine's HHDM) and the live tables after it (through the physmap): the
//! plan leaf by leaf, an empty lower half, and physmap samples.

use handoff::PAGE_SIZE;
use handoff::layout::Layout;
use handoff::memmap::MemoryMap;
use handoff::paging::Walker;
use handoff::phys::PhysWindow;
use handoff::plan::{self, Inputs, Plan};

use super::error::{ShimError, Tables};

/// What [`check_tables`] found.
pub struct Checked {
    pub verified: plan::Verified,
    /// RAM samples that translate to themselves, non-RAM samples unmapped.
    pub samples: (u64, u64),
}

/// Holds the tables under `walker` to the plan, an empty lower half and the
/// physmap samples: the checks made both before the switch (through
/// Limine's HHDM) and after it (through the physmap).
pub fn check_tables<W: PhysWindow>(
    tables: Tables,
    plan: &Plan,
    walker: &Walker<'_, W>,
    inputs: &Inputs<'_>,
) -> Result<Checked, ShimError> {
    // The lower half first: its error is the more precise.
    check_lower_half(tables, walker, inputs.layout)?;
    let verified = plan::verify(plan, walker, inputs).map_err(|e| ShimError::Verify(tables, e))?;
    let samples = check_physmap_samples(tables, walker, inputs.map, inputs.layout)?;
    Ok(Checked { verified, samples })
}

/// The lower half is empty: none of its top-level entries is present (so
/// no table hangs there, empty or not), and no leaf maps it.
fn check_lower_half<W: PhysWindow>(
    tables: Tables,
    walker: &Walker<'_, W>,
    layout: &Layout,
) -> Result<(), ShimError> {
    if let Some((index, entry)) = walker.lower_half_entry() {
        return Err(ShimError::LowerHalfEntry {
            tables,
            index,
            entry,
        });
    }
    match walker.leaves_in(0, layout.lower_half_end()).next() {
        Some(leaf) if leaf.virt < layout.lower_half_end() => {
            Err(ShimError::LowerHalfMapped(tables, leaf.virt))
        }
        _ => Ok(()),
    }
}

/// Samples the first, middle and last page of every region: RAM must
/// translate to itself through the physmap, everything else (including the
/// holes between regions) must not be mapped there.
fn check_physmap_samples<W: PhysWindow>(
    tables: Tables,
    walker: &Walker<'_, W>,
    map: &MemoryMap,
    layout: &Layout,
) -> Result<(u64, u64), ShimError> {
    let (mut ram, mut other) = (0, 0);
    let mut check = |phys: u64, is_ram: bool| -> Result<(), ShimError> {
        if phys >= layout.physmap_size() {
            return Ok(());
        }
        let found = walker
            .translate(layout.page_offset_base() + phys)
            .map(|t| t.phys.as_u64());
        let ok = if is_ram {
            found == Some(phys)
        } else {
            found.is_none()
        };
        if !ok {
            return Err(ShimError::PhysmapSample {
                tables,
                phys,
                found,
            });
        }
        if is_ram {
            ram += 1;
        } else {
            other += 1;
        }
        Ok(())
    };
    let mut previous_end = 0;
    for region in map.regions() {
        let last = (region.end - 1) & !(PAGE_SIZE - 1);
        let first = region.start & !(PAGE_SIZE - 1);
        let middle = (first + (last - first) / 2) & !(PAGE_SIZE - 1);
        let is_ram = region.kind.is_ram();
        // Outward-rounded non-RAM may share a page with RAM at its edges
        // only if unaligned; regions are page-aligned after normalising.
        for phys in [first, middle, last] {
            check(phys, is_ram)?;
        }
        if region.start > previous_end {
            check(previous_end, false)?;
        }
        previous_end = region.end;
    }
    Ok((ram, other))
}
