//! Self-tests of the layout in effect, read back from the live tables.

use handoff::layout::{Layout, MOVABLE, RegionKind};
use log::debug;

use crate::kspace;
use crate::selftest::{Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[
    Test {
        name: "kaslr: the live tables map RAM at the physmap base in effect",
        run: physmap_base_read_back,
    },
    Test {
        name: "kaslr: every live mapping lies inside a region of the layout in effect",
        run: mappings_inside_regions,
    },
];

/// The physmap base as the tables have it: the first physmap leaf's
/// virtual address less its physical one, whatever the layout says;
/// then held to the layout.
fn physmap_base_read_back() -> TestResult {
    let kernel = kspace::get();
    let layout = kernel.layout();
    let physmap = layout.region(RegionKind::Physmap);
    let walker = kernel.walker();
    let Some(leaf) = walker
        .leaves_in(physmap.start, physmap.end)
        .find(|l| physmap.contains(l.virt))
    else {
        return Err(fail!(
            "no leaf in the physmap {:#x}-{:#x}",
            physmap.start,
            physmap.end
        ));
    };
    let base = leaf.virt - leaf.phys.as_u64();
    debug!("kaslr: read back from the live tables: physmap base {base:#x}");
    check!(
        base == layout.page_offset_base(),
        "the tables map physical {:#x} at {:#x}: base {base:#x}, the layout says {:#x}",
        leaf.phys.as_u64(),
        leaf.virt,
        layout.page_offset_base()
    );
    // And the layout's own translation agrees for the last RAM byte.
    let end = kernel.memory_map().ram_end().min(layout.physmap_size());
    let va = layout.page_offset_base() + end - 1;
    match kernel.translate(va) {
        Some(t) => check!(
            t.phys.as_u64() == end - 1,
            "{va:#x} translates to {:#x}, not {:#x}",
            t.phys.as_u64(),
            end - 1
        ),
        None => {
            return Err(fail!(
                "the last RAM byte's physmap address {va:#x} is not mapped"
            ));
        }
    }
    Ok(())
}

/// Nothing mapped where the layout in effect has no region (the fixed
/// bases of a randomised layout are holes), and no leaf straddles two.
fn mappings_inside_regions() -> TestResult {
    let kernel = kspace::get();
    let layout = kernel.layout();
    let mut leaves = 0u64;
    for leaf in kernel.walker().leaves() {
        let last = leaf.virt + (leaf.size.bytes() - 1);
        let region = layout.region_of(leaf.virt);
        check!(
            region.is_some_and(|r| r.contains(last)),
            "leaf {:#x}-{last:#x} lies outside the regions of the layout in effect (in {:?})",
            leaf.virt,
            region.map(|r| r.name)
        );
        leaves += 1;
    }
    let fixed = Layout::fixed(layout.levels());
    let moved = MOVABLE
        .iter()
        .filter(|&&k| layout.region(k).start != fixed.region(k).start)
        .count();
    debug!(
        "kaslr: {leaves} live leaves, all inside the layout's regions; {moved} of 3 bases moved"
    );
    Ok(())
}
