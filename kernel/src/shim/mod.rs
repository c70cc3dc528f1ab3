//! The handoff shim: from Limine's page tables to baton's own, once.
//!
//! 1. **parse**: both memory maps (copied out of bootloader memory by
//!    `boot::collect`) are validated and merged into one normalised map,
//!    and the layout in effect is chosen from it (`kaslr`: randomised
//!    bases unless `nokaslr`);
//! 2. **plan**: the MTRRs, the PAT and the CPU's features decide page sizes
//!    and memory types; `handoff::plan` says what gets mapped where;
//! 3. **build**: the tables are written through Limine's HHDM into frames
//!    from the largest usable region, then read back through the HHDM and
//!    held to the plan, an empty lower half (no present top-level entry
//!    below the non-canonical hole) and physmap samples; if any check
//!    fails, baton stops still on Limine's tables;
//! 4. **switch**: CR3 is loaded from higher-half code, already on baton's
//!    stack, GDT and IDT; global TLB entries are flushed, baton's PAT
//!    loaded, and the tables become the kernel space;
//! 5. **verify**: the live tables are read back through the new physmap and
//!    held to the same checks again, and to the W^X rule.
//!
//! All decisions are made in the host-tested `handoff` crate; this module
//! reads the hardware, applies, and hands the result to [`kspace`]. What it
//! logs is `report`'s.

mod check;
mod error;
pub mod handover;
mod inputs;
pub mod kaslr;
mod report;
pub mod switch;
mod test_mtrr;
pub mod tests;

use handoff::Levels;
use handoff::cmdline::Inject;
use handoff::layout::Layout;
use handoff::memmap::{self, EfiMemoryMap, LimineMap, MemoryMap, Scratch};
use handoff::paging::{Builder, TableCount, Walker};
use handoff::phys::{FrameSource, PhysWindow};
use handoff::plan::{Inputs, Plan};
use log::warn;
use static_cell::ConstStaticCell;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use crate::boot::{self, BootInfo};
use crate::kspace::{self, DirectMap, EarlyFrames, Established, KernelSpace};
use crate::time::Phases;
pub use error::{ShimError, Tables};
use inputs::Hardware;

/// The normalised memory map, filled in place once.
static MAP: ConstStaticCell<MemoryMap> = ConstStaticCell::new(MemoryMap::new());
/// The normaliser's working space.
static SCRATCH: ConstStaticCell<Scratch> = ConstStaticCell::new(Scratch::new());
/// The plan, filled in place once; the kernel space owns it afterwards.
static PLAN: ConstStaticCell<Plan> = ConstStaticCell::new(Plan::new());

/// Runs the handoff, timing each phase in `phases`. On success baton runs
/// on its own page tables, which the returned kernel space owns, laid out
/// with randomised bases unless `nokaslr`.
pub fn run(
    boot: &BootInfo,
    nokaslr: bool,
    phases: &mut Phases,
) -> Result<&'static KernelSpace, ShimError> {
    let mut hhdm = limine_hhdm(boot.hhdm_offset);
    kspace::set_boot_window(&hhdm, boot.levels);
    // Limine's tables are classified by the fixed layout's regions: the
    // guard hole its HHDM starts in and the top 2 GiB its image is in.
    let limine_tables = Walker::new(&hhdm, Cr3::read().0, boot.levels);
    let limine = report::limine_tables(&limine_tables, boot, Layout::fixed(boot.levels));
    report::console_before_switch(&limine_tables);
    handover::observe(boot, &limine_tables);
    inject_mtrr();
    let hw = Hardware::read(boot)?;

    let map = parse(boot, &hw)?;
    let layout = kaslr::choose(boot, map, &hw.kernel, nokaslr);
    phases.done("parse");

    report::memory_types(&hw);
    let inputs = inputs(map, layout, &hw);
    let plan = PLAN.take();
    plan.make(&inputs)?;
    crate::console::fb::planned(plan.framebuffer());
    let plan_minimum = plan.minimum_tables();
    report::plan(plan, layout);
    phases.done("plan");

    let (root, frames, tables) = build(&mut hhdm, boot.levels, plan, &inputs)?;
    phases.done("build");

    let physmap = switch(root, layout, map, &hw);
    let pat_loaded = hw.features.pat;
    let kernel = kspace::install(
        root,
        physmap,
        Established {
            layout,
            map,
            plan,
            mtrrs: hw.mtrrs,
            pat: hw.pat,
            cpu: hw.cpu,
            kernel: hw.kernel,
            early_frames: frames,
            tables: (tables, plan_minimum),
        },
    );
    report::switched(root, boot, pat_loaded);
    phases.done("switch");

    verify(kernel, limine.as_ref())?;
    phases.done("verify");
    Ok(kernel)
}

/// `inject=mtrr-uc` and `inject=mtrr-wt`: an MTRR over part of RAM, before
/// the MTRRs are read.
fn inject_mtrr() {
    let ty = match crate::testing::injected() {
        Some(Inject::MtrrUc) => handoff::memtype::MemType::Uc,
        Some(Inject::MtrrWt) => handoff::memtype::MemType::Wt,
        _ => return,
    };
    test_mtrr::program(&crate::cpu::features::detect(), ty);
}

/// Limine's HHDM at `offset` as a window onto physical memory: the one
/// place baton vouches for it.
fn limine_hhdm(offset: u64) -> DirectMap {
    // SAFETY: Limine's HHDM maps all usable and bootloader-reclaimable
    // memory at its offset in every base revision, read-write: the frames
    // the new tables are built in (usable memory below 4 GiB that nothing
    // else uses) and Limine's own tables. The window is used only while
    // Limine's tables are loaded, until the switch.
    unsafe { DirectMap::new(offset) }
}

/// Whether Limine's tables (CR3 holds them still) map the `len` bytes at
/// `virt` to the same bytes at `phys`: the screen console asks before it
/// draws through Limine's HHDM, which base revision 3 promises to map the
/// framebuffer in, and which Limine 9.6.7 under its KASLR sometimes does
/// not.
pub fn limine_maps(virt: u64, phys: u64, len: u64) -> bool {
    let Some(offset) = boot::hhdm_offset() else {
        return false;
    };
    let hhdm = limine_hhdm(offset);
    let walker = Walker::new(&hhdm, Cr3::read().0, boot::paging_levels_from_cr4());
    let end = virt.saturating_add(len);
    let mut at = virt;
    while at < end {
        let Some(t) = walker.translate(at) else {
            return false;
        };
        if t.phys.as_u64() != phys + (at - virt) {
            return false;
        }
        let size = t.leaf.size.bytes();
        at = (at & !(size - 1)) + size;
    }
    true
}

/// Validates both memory maps and merges them into the normalised map.
fn parse(boot: &BootInfo, hw: &Hardware) -> Result<&'static MemoryMap, ShimError> {
    let raw = boot::RAW_MAPS.lock();
    if boot.firmware.is_uefi() && raw.efi().is_none() {
        return Err(ShimError::NoEfiMap);
    }
    let bits = hw.features.max_phys_bits;
    let limine = LimineMap::parse(raw.limine(), bits)?;
    let efi = match raw.efi() {
        Some((bytes, info)) => Some(EfiMemoryMap::parse(
            bytes,
            info.desc_size,
            info.desc_version,
            bits,
        )?),
        None => None,
    };
    let map = MAP.take();
    let summary = memmap::build(efi.as_ref(), &limine, SCRATCH.take(), map)?;
    report::memory_map(map, &summary);
    Ok(map)
}

fn inputs<'a>(map: &'a MemoryMap, layout: &'a Layout, hw: &'a Hardware) -> Inputs<'a> {
    Inputs {
        map,
        layout,
        mtrrs: &hw.mtrrs,
        pat: &hw.pat,
        cpu: hw.cpu,
        kernel: &hw.kernel,
        framebuffer: crate::console::fb::wanted(),
    }
}

/// Where the new tables' frames end: every base revision's HHDM maps the
/// usable memory below 4 GiB (and Limine 9.6.7 under its KASLR sometimes
/// leaves a usable entry above it out).
pub const EARLY_FRAMES_BELOW: u64 = 1 << 32;

/// Builds the plan into new tables through Limine's HHDM and checks them
/// there before anything depends on them. Returns the root, the frames
/// the tables came from and the tables per level, as walked.
fn build(
    hhdm: &mut DirectMap,
    levels: Levels,
    plan: &Plan,
    inputs: &Inputs<'_>,
) -> Result<(PhysFrame, EarlyFrames, TableCount), ShimError> {
    let limit = inputs.layout.physmap_size().min(EARLY_FRAMES_BELOW);
    let mut frames = EarlyFrames::new(inputs.map, limit).ok_or(ShimError::NoUsableMemory)?;
    let mut builder = Builder::new(hhdm, &mut frames, levels)?;
    for mapping in plan.mappings() {
        builder.map(mapping)?;
    }
    let (root, built) = (builder.root(), builder.tables_allocated());
    if crate::testing::is_injected(Inject::LowerHalf) {
        inject_lower_half_entry(hhdm, &mut frames, root);
    }
    report::built(built, frames.used().next().expect("one region"), root);
    let new = Walker::new(&*hhdm, root, levels);
    let checked = check::check_tables(Tables::New, plan, &new, inputs)?;
    report::checked_before_switch(&checked);
    Ok((root, frames, new.stats().tables))
}

/// Loads the new tables and baton's PAT. Returns the physmap: the new
/// tables were checked to map every RAM region there.
fn switch(root: PhysFrame, layout: &'static Layout, map: &MemoryMap, hw: &Hardware) -> DirectMap {
    kspace::clear_boot_window();
    let physmap_base = layout.page_offset_base();
    // SAFETY: the new tables map the kernel image at its link address with
    // the same permissions (so this code, its stack in .bss, the GDT, IDT
    // and TSS stay reachable); nothing baton still uses points into the
    // lower half or Limine's HHDM (boot::collect copied it all out). They
    // were checked before the switch to map every RAM region, page tables
    // included, read-write at page_offset_base: the physmap this window
    // reads and writes through. This is the one place that vouches for it.
    let physmap = unsafe {
        switch::load_cr3(root, layout.levels(), layout, map);
        DirectMap::new(physmap_base)
    };
    crate::cpu::tlb::flush_all();
    if hw.features.pat {
        // SAFETY: the CPU has the PAT. Every mapping in baton's tables was
        // planned for this PAT; entries 0, 2 and 3 (the WB, UC- and UC the
        // switch path uses) mean the same under Limine's.
        unsafe { crate::cpu::load_pat(hw.pat.to_msr()) };
        switch::record_pat(hw.pat.to_msr());
    }
    physmap
}

/// Holds the live tables to the plan, the same checks as before the
/// switch and W^X, and logs their statistics.
fn verify(kernel: &KernelSpace, limine: Option<&handoff::paging::Stats>) -> Result<(), ShimError> {
    let walker = kernel.walker();
    let plan = kernel.plan();
    let checked = check::check_tables(Tables::Live, &plan, &walker, &kernel.inputs())?;
    report::checked_live(&checked);
    let wx = kernel.check_wx(|range| warn!("{range}"));
    if !wx.passed() {
        log::error!("{wx}");
        return Err(ShimError::WxFound(wx.pages));
    }
    log::info!("{wx}");
    report::live_statistics(&walker, kernel.layout(), plan.minimum_tables(), limine);
    report::reclaimable(kernel.memory_map());
    Ok(())
}

/// Points entry 0 of the new root table at a fresh, empty table
/// (`inject=lower-half`): no leaf in the lower half, but a present
/// top-level entry there, which the checks before the switch must catch.
fn inject_lower_half_entry(hhdm: &mut DirectMap, frames: &mut EarlyFrames, root: PhysFrame) {
    let Some(table) = frames.allocate_frame() else {
        return warn!("inject: no frame left for the lower-half table; nothing done");
    };
    hhdm.table_mut(table).zero();
    hhdm.table_mut(root)[0].set_frame(table, PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
    warn!(
        "inject: entry 0 of the new root table now points at an empty table at {:#x}",
        table.start_address().as_u64()
    );
}
