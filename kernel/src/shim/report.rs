//! What the handoff tells the log, phase by phase. Nothing here decides
//! anything.

use handoff::layout::Layout;
use handoff::memmap::{Kind, MemoryMap, Summary};
use handoff::memtype::{Mtrrs, PageKind, Pat};
use handoff::paging::{LOWER_HALF_ENTRIES, Stats, TableCount, Walker};
use handoff::phys::PhysWindow;
use handoff::plan::{CpuCaps, Plan};
use log::{debug, info, warn};
use x86_64::structures::paging::PhysFrame;

use super::check::Checked;
use super::inputs::Hardware;
use crate::boot::BootInfo;

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Logs what the tables Limine handed over map where baton cares (walked
/// through its HHDM before anything changes): the lower half and the
/// kernel image, a few tables each. Counting everything (frames per
/// level, every leaf of the HHDM) reads every entry of every table: a
/// GiB of 4 KiB pages, or 512 leaves per GiB of RAM where Limine maps its
/// HHDM with 2 MiB pages, which under TCG costs as much as the rest of
/// the handoff. That is done at `loglevel=debug` only; the counts are
/// returned then.
pub fn limine_tables<W: PhysWindow>(
    walker: &Walker<'_, W>,
    boot: &BootInfo,
    layout: &Layout,
) -> Option<Stats> {
    let kernel_start = layout.kernel_image_start();
    let bounded = [
        ("kernel", kernel_start, 0),
        ("lower half", 0, layout.lower_half_end()),
    ];
    if !log::log_enabled!(log::Level::Debug) {
        return None;
    }
    let mut named = 0;
    for (name, count) in walker.region_stats(&bounded) {
        named += count.total();
        if count.total() == 0 {
            debug!("limine:   nothing mapped in the {name}");
        } else {
            debug!("limine:   leaves in {name}: {count}");
        }
    }
    let stats = walker.stats();
    debug!(
        "limine: page tables at entry: {} frames, {} leaves",
        stats.tables,
        stats.leaves.total()
    );
    for (name, count) in walker.region_stats(&[("HHDM", boot.hhdm_offset, kernel_start)]) {
        named += count.total();
        debug!("limine:   leaves in {name}: {count}");
    }
    let elsewhere = stats.leaves.total() - named;
    if elsewhere != 0 {
        debug!("limine:   leaves elsewhere: {elsewhere}");
    }
    Some(stats)
}

/// The normalised memory map: a summary, every region at debug level, and
/// what each kind of memory adds up to.
pub fn memory_map(map: &MemoryMap, summary: &Summary) {
    debug!("handoff: memory map: {summary}");
    for region in map.regions() {
        debug!(
            "handoff:   {:#014x}-{:#014x} {:?}{}",
            region.start,
            region.end,
            region.kind,
            if region.is_efi_runtime() {
                " (EFI runtime)"
            } else {
                ""
            }
        );
    }
    debug!(
        "handoff: RAM {} MiB up to {:#x}: usable {} MiB, boot services {} MiB, \
         bootloader-reclaimable {} MiB",
        mib(map.ram_bytes()),
        map.ram_end(),
        mib(map.bytes(Kind::Usable)),
        mib(map.bytes(Kind::BootServices)),
        mib(map.bytes(Kind::BootloaderReclaimable)),
    );
    debug!(
        "handoff:   kernel {} KiB, ACPI {} KiB, EFI runtime {} KiB",
        map.bytes(Kind::Kernel) >> 10,
        (map.bytes(Kind::AcpiReclaimable) + map.bytes(Kind::AcpiNvs)) >> 10,
        (map.bytes(Kind::RuntimeCode) + map.bytes(Kind::RuntimeData)) >> 10,
    );
    let soft_reserved = map.bytes(Kind::SoftReserved);
    if soft_reserved > 0 {
        info!(
            "handoff: specific-purpose (soft-reserved) memory: {} MiB, kept out of the physmap \
             and the allocator",
            mib(soft_reserved)
        );
    }
}

/// The CPU's paging features and the MTRRs.
pub fn memory_types(hw: &Hardware) {
    let (mtrrs, cpu): (&Mtrrs, CpuCaps) = (&hw.mtrrs, hw.cpu);
    debug!(
        "handoff: CPU: {}-bit physical addresses, 1G pages {}, NX {}, global pages {}, PAT {}",
        hw.features.max_phys_bits,
        yes(cpu.gb_pages),
        yes(cpu.nx),
        yes(cpu.global),
        yes(hw.features.pat)
    );
    if !hw.features.mtrr {
        debug!("handoff: MTRRs: none");
        return;
    }
    debug!(
        "handoff: MTRRs {}: default {}, fixed ranges {}, {} variable ranges",
        if mtrrs.enabled() {
            "enabled"
        } else {
            "disabled"
        },
        mtrrs.default_type(),
        if mtrrs.fixed_enabled() { "on" } else { "off" },
        mtrrs.variable_ranges().len()
    );
    for range in mtrrs.variable_ranges() {
        debug!(
            "handoff:   MTRR base {:#x} mask {:#x} {}",
            range.base, range.mask, range.mem_type
        );
    }
}

/// The plan: its mappings, the physmap, the cost of memory-type cuts. (The
/// regions left for later stages are in the layout's lines.)
pub fn plan(plan: &Plan, layout: &Layout) {
    debug!(
        "handoff: plan: {} mappings; physmap {} MiB with pages up to {}; \
         leaves {}; {} page-table frames",
        plan.mappings().len(),
        mib(plan.physmap_bytes),
        plan.max_page,
        plan.leaves(),
        plan.minimum_tables().total()
    );
    if plan.cost.mtrr_splits + plan.cost.attr_splits == 0 {
        debug!("handoff: memory-type cuts: none");
    } else {
        info!("handoff: memory-type cuts: {}", plan.cost);
    }
    if plan.unmapped_ram != 0 {
        warn!(
            "handoff: {} MiB of RAM lie beyond the physmap's {} TiB and stay unmapped",
            mib(plan.unmapped_ram),
            layout.physmap_size() >> 40
        );
    }
}

/// The tables just built.
pub fn built(tables: TableCount, frames: core::ops::Range<u64>, root: PhysFrame) {
    info!(
        "handoff: built {} page-table frames at {:#x}-{:#x}; root {:#x}",
        tables.total(),
        frames.start,
        frames.end,
        root.start_address().as_u64()
    );
}

/// The checks of the new tables before the switch.
pub fn checked_before_switch(checked: &Checked) {
    debug!(
        "handoff: new tables verified before the switch through Limine's HHDM: \
         {} leaves, {} MiB mapped",
        checked.verified.leaves.total(),
        mib(checked.verified.bytes),
    );
    debug!(
        "handoff:   lower half empty ({} top-level entries not present); {} RAM samples \
         translate to themselves, {} non-RAM samples unmapped",
        LOWER_HALF_ENTRIES, checked.samples.0, checked.samples.1
    );
}

/// The switch.
pub fn switched(root: PhysFrame, boot: &BootInfo, pat_loaded: bool) {
    info!(
        "handoff: CR3 = {:#x}: running on baton's {}-level tables{}",
        root.start_address().as_u64(),
        boot.levels.count(),
        if pat_loaded {
            "; PAT loaded (WB WC UC- UC WB WP UC- WT)"
        } else {
            ""
        }
    );
}

/// The checks of the live tables after the switch.
pub fn checked_live(checked: &Checked) {
    info!(
        "handoff: live tables match the plan: {} leaves, {} MiB mapped",
        checked.verified.leaves.total(),
        mib(checked.verified.bytes)
    );
    debug!(
        "handoff: lower half empty; physmap: {} RAM samples translate to themselves, \
         {} non-RAM samples unmapped",
        checked.samples.0, checked.samples.1
    );
}

/// The live tables' statistics: frames against the minimum, leaves per
/// region, and against Limine's tables.
pub fn live_statistics<W: PhysWindow>(
    walker: &Walker<'_, W>,
    layout: &Layout,
    minimum: TableCount,
    limine: Option<&Stats>,
) {
    let stats = walker.stats();
    debug!(
        "handoff: page-table frames: {}; minimum for these page sizes: {}",
        stats.tables,
        minimum.total()
    );
    if stats.tables != minimum {
        warn!("handoff: the live tables use more frames than the minimum");
    }
    let regions = layout.regions().map(|r| (r.name, r.start, r.end));
    for (name, count) in walker.region_stats(&regions) {
        if count.total() != 0 {
            debug!("handoff: leaves in {name}: {count}");
        }
    }
    let Some(limine) = limine else {
        return;
    };
    debug!(
        "handoff: Limine's tables vs baton's: {} vs {} page-table frames, \
         {} vs {} leaves (4K {} vs {}, 2M {} vs {}, 1G {} vs {})",
        limine.tables.total(),
        stats.tables.total(),
        limine.leaves.total(),
        stats.leaves.total(),
        limine.leaves.size_4k,
        stats.leaves.size_4k,
        limine.leaves.size_2m,
        stats.leaves.size_2m,
        limine.leaves.size_1g,
        stats.leaves.size_1g,
    );
}

/// What becomes of bootloader-reclaimable memory.
pub fn reclaimable(map: &MemoryMap) {
    debug!(
        "handoff: bootloader-reclaimable memory: {} KiB, reusable once every CPU has left Limine's code",
        map.bytes(Kind::BootloaderReclaimable) >> 10
    );
}

/// The memory type Limine's HHDM gives the screen console's framebuffer,
/// read from Limine's tables (walked through the HHDM) and the PAT loaded
/// now, Limine's.
pub fn console_before_switch<W: PhysWindow>(walker: &Walker<'_, W>) {
    let Some(virt) = crate::console::fb::hhdm_address() else {
        return;
    };
    // Whether it draws there was decided at its start, over the whole
    // framebuffer (`shim::limine_maps`); here only the memory type.
    let leaf = walker.translate(virt).map(|t| t.leaf);
    let Some(leaf) = leaf.filter(|_| crate::console::fb::draws_before_switch()) else {
        return warn!(
            "console: Limine's HHDM does not map the framebuffer at {virt:#x}; the screen \
             starts at the CR3 switch"
        );
    };
    let kind = if leaf.size == handoff::paging::PageSize::Size4K {
        PageKind::Size4KiB
    } else {
        PageKind::Large
    };
    let pat = if crate::cpu::features::detect().pat {
        // SAFETY: the CPU has the PAT, so IA32_PAT exists.
        Pat::from_msr(unsafe { crate::cpu::features::rdmsr(handoff::memtype::pat::IA32_PAT) })
            .unwrap_or(Pat::LIMINE)
    } else {
        Pat::RESET
    };
    debug!(
        "console: drawing through Limine's HHDM at {virt:#x}, {}",
        crate::console::fb::type_name(pat.type_for_flags(leaf.flags, kind))
    );
}
