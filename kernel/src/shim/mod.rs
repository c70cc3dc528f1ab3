//! The handoff shim: from Limine's page tables to baton's own.
//!
//! 1. **parse**: both memory maps (copied out of bootloader memory by
//!    `boot::collect`) are validated and merged into one normalised map;
//! 2. **plan**: the MTRRs, the PAT and the CPU's features decide page sizes
//!    and memory types; `handoff::plan` says what gets mapped where;
//! 3. **build**: the tables are written through Limine's HHDM into frames
//!    from the largest usable region;
//! 4. **check before the switch**: the new tables are read back through
//!    Limine's HHDM and held to the plan, an empty lower half (no present
//!    top-level entry below the non-canonical hole) and physmap samples;
//!    if any check fails, baton stops still on Limine's tables;
//! 5. **switch**: CR3 is loaded from higher-half code, already on baton's
//!    stack, GDT and IDT; global TLB entries are flushed and baton's PAT
//!    loaded;
//! 6. **verify**: the live tables are read back through the new physmap and
//!    held to the same checks again, and to the W^X rule.
//!
//! All decisions are made in the host-tested `handoff` crate; this module
//! reads the hardware, applies, and reports.

pub mod direct;
pub mod switch;
pub mod tests;

use core::fmt::{self, Write};

use handoff::layout::{Layout, RegionKind};
use handoff::memmap::{self, EfiMemoryMap, Kind, LimineMap, MapError, MemoryMap, Scratch};
use handoff::mtrr::{self, MtrrError, MtrrRegisters, Mtrrs, Pat, PatError, VariableRangeMsrs};
use handoff::paging::{BuildError, Builder, Walker};
use handoff::plan::{self, CpuCaps, Inputs, KernelImage, KernelSection, Perm, Plan, PlanError};
use handoff::{Levels, PAGE_SIZE};
use log::{debug, info, warn};
use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};
use x86_64::structures::paging::PhysFrame;

use crate::boot::{self, BootInfo};
use crate::cpu::features::{self, Features};
use crate::time;
use direct::{DirectMap, EarlyFrames};

/// The normalised memory map (read-only once the handoff is done).
pub static MAP: spin::Mutex<MemoryMap> = spin::Mutex::new(MemoryMap::new());
static SCRATCH: spin::Mutex<Scratch> = spin::Mutex::new(Scratch::new());
/// The plan the live tables were built from.
pub static PLAN: spin::Mutex<Plan> = spin::Mutex::new(Plan::new());
/// The frames page tables come from until the frame allocator runs: what
/// the handoff built with, continued by later stages (the EFI window).
pub static EARLY_FRAMES: spin::Mutex<Option<EarlyFrames>> = spin::Mutex::new(None);

/// Where page tables can be read: Limine's HHDM before the switch, the
/// physmap after (0 before the handoff starts). For fault reports.
static TABLE_WINDOW: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static FIVE_LEVEL: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// `inject=lower-half`: damage the new tables before they are checked.
static INJECT_LOWER_HALF: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// Makes the handoff put a present entry into the lower half of its new
/// root table once built (`inject=lower-half`, test runs only), so that
/// the checks before the switch must stop the boot.
pub fn inject_lower_half() {
    INJECT_LOWER_HALF.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// The walk of `va` through the live tables (for fault reports), once the
/// handoff has started.
pub fn path(va: u64) -> Option<handoff::paging::Path> {
    use core::sync::atomic::Ordering::Relaxed;
    let offset = TABLE_WINDOW.load(Relaxed);
    if offset == 0 {
        return None;
    }
    let levels = if FIVE_LEVEL.load(Relaxed) {
        Levels::Five
    } else {
        Levels::Four
    };
    let (root, _) = Cr3::read();
    // SAFETY: the window at `offset` (HHDM or physmap) maps every page
    // table of the live tables: they are in RAM.
    let window = unsafe { DirectMap::new(offset) };
    Some(Walker::new(&window, root, levels).path(va))
}

/// What the handoff established, for later stages and the self-tests.
#[derive(Debug)]
pub struct State {
    pub levels: Levels,
    pub layout: &'static Layout,
    /// The root of baton's page tables (PML4 or PML5).
    pub root: PhysFrame,
    pub mtrrs: Mtrrs,
    /// The PAT now loaded.
    pub pat: Pat,
    pub cpu: CpuCaps,
    pub kernel: KernelImage,
    /// The page-table frames the handoff built, per level, as walked right
    /// after the switch, and the minimum for the plan's page sizes.
    pub tables_built: handoff::paging::TableCount,
    pub tables_minimum: handoff::paging::TableCount,
}

static STATE: spin::Once<State> = spin::Once::new();

/// The handoff's result. Panics before [`run`] succeeded.
pub fn state() -> &'static State {
    STATE.get().expect("the handoff has not run")
}

/// Holds the live tables, read through `physmap`, to the plan as it stands
/// now (after the handoff, with whatever was added to it since).
pub fn verify_live(physmap: &DirectMap) -> Result<plan::Verified, plan::VerifyError> {
    let s = state();
    let walker = Walker::new(physmap, s.root, s.levels);
    let map = MAP.lock();
    let inputs = Inputs {
        map: &map,
        layout: s.layout,
        mtrrs: &s.mtrrs,
        pat: &s.pat,
        cpu: s.cpu,
        kernel: &s.kernel,
    };
    plan::verify(&PLAN.lock(), &walker, &inputs)
}

/// Which tables a check read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// baton's new tables, through Limine's HHDM, before CR3 is loaded.
    New,
    /// The live tables, through baton's physmap, after the switch.
    Live,
}

impl fmt::Display for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tables::New => "the new tables (read through Limine's HHDM; CR3 not switched)",
            Tables::Live => "the live tables",
        })
    }
}

/// Why the handoff stopped.
#[derive(Debug)]
pub enum ShimError {
    Map(MapError),
    Mtrr(MtrrError),
    Pat(PatError),
    Plan(PlanError),
    Build(BuildError),
    NoUsableMemory,
    NoEfiMap,
    Verify(Tables, plan::VerifyError),
    WxFound(u64),
    /// A leaf maps this lower-half address.
    LowerHalfMapped(Tables, u64),
    /// A top-level entry of the lower half is present.
    LowerHalfEntry {
        tables: Tables,
        index: usize,
        entry: u64,
    },
    PhysmapSample {
        tables: Tables,
        phys: u64,
        found: Option<u64>,
    },
}

impl fmt::Display for ShimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShimError::Map(e) => write!(f, "memory map: {e}"),
            ShimError::Mtrr(e) => write!(f, "MTRRs: {e}"),
            ShimError::Pat(e) => write!(f, "PAT: {e}"),
            ShimError::Plan(e) => write!(f, "plan: {e}"),
            ShimError::Build(e) => write!(f, "building the page tables: {e}"),
            ShimError::NoUsableMemory => write!(f, "no usable memory for page tables"),
            ShimError::NoEfiMap => write!(
                f,
                "UEFI boot without an EFI memory map: baton needs it for memory types \
                 and runtime services"
            ),
            ShimError::Verify(tables, e) => write!(f, "{tables} differ from the plan: {e}"),
            ShimError::WxFound(n) => write!(f, "{n} W+X pages in the live tables"),
            ShimError::LowerHalfMapped(tables, va) => {
                write!(
                    f,
                    "{tables}: the lower half is not empty: {va:#x} is mapped"
                )
            }
            ShimError::LowerHalfEntry {
                tables,
                index,
                entry,
            } => write!(
                f,
                "{tables}: the lower half is not empty: top-level entry {index} is present \
                 ({entry:#018x})"
            ),
            ShimError::PhysmapSample {
                tables,
                phys,
                found,
            } => write!(
                f,
                "{tables}: physmap address of {phys:#x} translates to {found:?}"
            ),
        }
    }
}

macro_rules! from_error {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for ShimError {
            fn from(e: $ty) -> Self {
                ShimError::$variant(e)
            }
        }
    )*};
}
from_error!(
    Map(MapError),
    Mtrr(MtrrError),
    Pat(PatError),
    Plan(PlanError),
    Build(BuildError)
);

/// TSC stamps of the handoff phases (the EFI stage, which runs after the
/// shim, adds its own).
static PHASES: spin::Mutex<Phases> = spin::Mutex::new(Phases {
    start: 0,
    last: 0,
    names: [("", 0); 6],
    len: 0,
});

/// Ends the phase `name` (one after the shim's own: `efi`).
pub fn phase_done(name: &'static str) {
    PHASES.lock().done(name);
}

/// Logs every phase's duration and the total.
pub fn report_phases() {
    PHASES.lock().report();
}

struct Phases {
    start: u64,
    last: u64,
    names: [(&'static str, u64); 6],
    len: usize,
}

impl Phases {
    fn new() -> Self {
        let now = time::tsc();
        Self {
            start: now,
            last: now,
            names: [("", 0); 6],
            len: 0,
        }
    }

    fn done(&mut self, name: &'static str) {
        let now = time::tsc();
        if let Some(slot) = self.names.get_mut(self.len) {
            *slot = (name, now - self.last);
            self.len += 1;
        }
        self.last = now;
    }

    fn report(&self) {
        let mut line = crate::fixed::FixedStr::<256>::new();
        for (name, cycles) in &self.names[..self.len] {
            let _ = write!(line, "{name} {} us, ", time::cycles_to_micros(*cycles));
        }
        info!(
            "handoff: phases: {line}total {} us",
            time::cycles_to_micros(self.last - self.start)
        );
    }
}

/// The kernel image as the linker laid it out and Limine loaded it.
fn kernel_image(boot: &BootInfo) -> KernelImage {
    unsafe extern "C" {
        static __text_start: u8;
        static __text_end: u8;
        static __rodata_start: u8;
        static __rodata_end: u8;
        static __data_start: u8;
        static __boot_stack_guard: u8;
        static __boot_stack_bottom: u8;
        static __data_end: u8;
    }
    let addr = |s: &u8| s as *const u8 as u64;
    // SAFETY: only the addresses of the linker's section symbols are taken.
    let (text, rodata, data, bss) = unsafe {
        (
            (addr(&__text_start), addr(&__text_end)),
            (addr(&__rodata_start), addr(&__rodata_end)),
            (addr(&__data_start), addr(&__boot_stack_guard)),
            (addr(&__boot_stack_bottom), addr(&__data_end)),
        )
    };
    let section = |name, (start, end), perm| KernelSection {
        name,
        start,
        end,
        perm,
    };
    KernelImage {
        virt_base: boot.kernel_virt,
        phys_base: PhysAddr::new(boot.kernel_phys),
        sections: [
            section("text", text, Perm::ReadExecute),
            section("rodata", rodata, Perm::ReadOnly),
            section("data", data, Perm::ReadWrite),
            // The guard page between them stays unmapped.
            section("bss", bss, Perm::ReadWrite),
        ],
    }
}

fn read_mtrrs(cpu: &Features) -> Result<Mtrrs, MtrrError> {
    if !cpu.mtrr {
        return Mtrrs::absent(cpu.max_phys_bits);
    }
    // SAFETY: CPUID says the CPU has MTRRs, so MTRRCAP and DEF_TYPE exist;
    // below, the fixed ranges are read only when MTRRCAP.FIX says they
    // exist and the variable pairs only up to MTRRCAP.VCNT.
    let mut regs = unsafe {
        MtrrRegisters::new(
            features::rdmsr(mtrr::IA32_MTRRCAP),
            features::rdmsr(mtrr::IA32_MTRR_DEF_TYPE),
            cpu.max_phys_bits,
        )
    };
    if regs.has_fixed() {
        for (slot, &msr) in regs.fixed.iter_mut().zip(&mtrr::IA32_MTRR_FIX) {
            // SAFETY: see above.
            *slot = unsafe { features::rdmsr(msr) };
        }
    }
    let count = regs.variable_count().min(mtrr::MAX_VARIABLE_RANGES);
    for n in 0..count {
        // SAFETY: see above.
        regs.variable[n] = unsafe {
            VariableRangeMsrs {
                base: features::rdmsr(mtrr::ia32_mtrr_physbase(n)),
                mask: features::rdmsr(mtrr::ia32_mtrr_physmask(n)),
            }
        };
    }
    Mtrrs::new(&regs)
}

/// Runs the handoff. On success baton runs on its own page tables.
pub fn run(boot: &BootInfo) -> Result<&'static State, ShimError> {
    let mut phases = PHASES.lock();
    *phases = Phases::new();
    let cpu_features = features::detect();
    let layout = Layout::for_levels(boot.levels);
    FIVE_LEVEL.store(
        boot.levels == Levels::Five,
        core::sync::atomic::Ordering::Relaxed,
    );
    TABLE_WINDOW.store(boot.hhdm_offset, core::sync::atomic::Ordering::Relaxed);
    let limine_stats = limine_tables(boot, layout);

    // 1. Parse and merge the memory maps.
    let raw = boot::RAW_MAPS.lock();
    if boot.firmware.is_uefi() && raw.efi().is_none() {
        return Err(ShimError::NoEfiMap);
    }
    let limine = LimineMap::parse(raw.limine(), cpu_features.max_phys_bits)?;
    let efi = match raw.efi() {
        Some((bytes, info)) => Some(EfiMemoryMap::parse(
            bytes,
            info.desc_size,
            info.desc_version,
            cpu_features.max_phys_bits,
        )?),
        None => None,
    };
    let mut map = MAP.lock();
    let summary = memmap::build(efi.as_ref(), &limine, &mut SCRATCH.lock(), &mut map)?;
    drop(raw);
    info!("handoff: memory map: {summary}");
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
    let mib = |b: u64| b >> 20;
    info!(
        "handoff: RAM {} MiB up to {:#x}: usable {} MiB, boot services {} MiB, \
         bootloader-reclaimable {} MiB, kernel {} KiB, ACPI {} KiB, EFI runtime {} KiB",
        mib(map.ram_bytes()),
        map.ram_end(),
        mib(map.bytes(Kind::Usable)),
        mib(map.bytes(Kind::BootServices)),
        mib(map.bytes(Kind::BootloaderReclaimable)),
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
    phases.done("parse");

    // 2. Plan.
    let mtrrs = read_mtrrs(&cpu_features)?;
    let nxe = Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE);
    let cpu = CpuCaps {
        gb_pages: cpu_features.gb_pages,
        nx: cpu_features.nx && nxe,
        global: cpu_features.pge,
    };
    let pat = if cpu_features.pat {
        Pat::BATON
    } else {
        Pat::RESET
    };
    log_memory_types(&mtrrs, &cpu_features, cpu);
    let kernel = kernel_image(boot);
    let inputs = Inputs {
        map: &map,
        layout,
        mtrrs: &mtrrs,
        pat: &pat,
        cpu,
        kernel: &kernel,
    };
    let mut plan = PLAN.lock();
    plan.make(&inputs)?;
    let minimum = plan.minimum_tables();
    let leaves = plan.leaves();
    info!(
        "handoff: plan: {} mappings; physmap {} MiB at {:#x} with pages up to {}; \
         leaves {leaves}; {} page-table frames",
        plan.mappings().len(),
        mib(plan.physmap_bytes),
        layout.page_offset_base(),
        plan.max_page,
        minimum.total()
    );
    info!("handoff: physmap cuts for memory types: {}", plan.cost);
    if plan.unmapped_ram != 0 {
        warn!(
            "handoff: {} MiB of RAM lie beyond the physmap's {} TiB and stay unmapped",
            mib(plan.unmapped_ram),
            layout.physmap_size() >> 40
        );
    }
    for kind in [
        RegionKind::Vmalloc,
        RegionKind::Vmemmap,
        RegionKind::EfiRuntime,
    ] {
        let r = layout.region(kind);
        info!(
            "handoff: reserved, empty for now: {} {:#x}-{:#x}",
            r.name, r.start, r.end
        );
    }
    phases.done("plan");

    // 3. Build through Limine's HHDM.
    let mut frames = EarlyFrames::new(&map, layout.physmap_size().min(1 << 32))
        .ok_or(ShimError::NoUsableMemory)?;
    // SAFETY: Limine's HHDM maps all usable memory at `hhdm_offset` in
    // every base revision, and the frames come from usable memory that
    // nothing else uses.
    let mut hhdm = unsafe { DirectMap::new(boot.hhdm_offset) };
    let mut builder = Builder::new(&mut hhdm, &mut frames, boot.levels)?;
    for mapping in plan.mappings() {
        builder.map(mapping)?;
    }
    let root = builder.root();
    let built = builder.tables_allocated();
    if INJECT_LOWER_HALF.load(core::sync::atomic::Ordering::Relaxed) {
        inject_lower_half_entry(&mut hhdm, &mut frames, root);
    }
    let table_frames = frames.used().next().expect("one region");
    *EARLY_FRAMES.lock() = Some(frames);
    info!(
        "handoff: built {} page-table frames at {:#x}-{:#x}; root {:#x}",
        built.total(),
        table_frames.start,
        table_frames.end,
        root.start_address().as_u64()
    );
    phases.done("build");

    // 4. Check the new tables before loading them, through Limine's HHDM
    // (which holds the page-table frames: they are usable memory). A
    // failure returns here, still on Limine's tables, and baton stops.
    let new = Walker::new(&hhdm, root, boot.levels);
    let checked = check_tables(Tables::New, &plan, &new, &inputs)?;
    info!(
        "handoff: new tables verified before the switch through Limine's HHDM: \
         {} leaves, {} MiB mapped; lower half empty ({} top-level entries not present); \
         {} RAM samples translate to themselves, {} non-RAM samples unmapped",
        checked.verified.leaves.total(),
        mib(checked.verified.bytes),
        handoff::paging::LOWER_HALF_ENTRIES,
        checked.samples.0,
        checked.samples.1
    );

    // 5. Switch.
    // SAFETY: the new tables map the kernel image at its link address with
    // the same permissions (so this code, its stack in .bss, the GDT, IDT
    // and TSS stay reachable) and the physmap; nothing baton still uses
    // points into the lower half or Limine's HHDM (boot::collect copied
    // it all out).
    unsafe { switch::load_cr3(root, boot.levels, layout, &map) };
    TABLE_WINDOW.store(
        layout.page_offset_base(),
        core::sync::atomic::Ordering::Relaxed,
    );
    flush_global_tlb(cpu.global);
    if cpu_features.pat {
        // SAFETY: the CPU has the PAT. Every mapping in baton's tables was
        // planned for this PAT; entries 0, 2 and 3 (the WB, UC- and UC the
        // switch path uses) mean the same under Limine's.
        unsafe { crate::cpu::load_pat(pat.to_msr()) };
        switch::record_pat(pat.to_msr());
    }
    info!(
        "handoff: CR3 = {:#x}: running on baton's {}-level tables{}",
        root.start_address().as_u64(),
        boot.levels.count(),
        if cpu_features.pat {
            "; PAT loaded (WB WC UC- UC WB WP UC- WT)"
        } else {
            ""
        }
    );
    phases.done("switch");

    // 6. Verify the live tables, read through the new physmap.
    // SAFETY: the physmap maps all RAM, page tables included, read-write.
    let physmap = unsafe { DirectMap::new(layout.page_offset_base()) };
    let walker = Walker::new(&physmap, root, boot.levels);
    let checked = check_tables(Tables::Live, &plan, &walker, &inputs)?;
    info!(
        "handoff: live tables match the plan: {} leaves, {} MiB mapped",
        checked.verified.leaves.total(),
        mib(checked.verified.bytes)
    );
    info!(
        "handoff: lower half empty; physmap: {} RAM samples translate to themselves, \
         {} non-RAM samples unmapped",
        checked.samples.0, checked.samples.1
    );
    let wx = walker.check_wx(|range| warn!("{range}"));
    if wx.passed() {
        info!("{wx}");
    } else {
        log::error!("{wx}");
        return Err(ShimError::WxFound(wx.pages));
    }
    let stats = walker.stats();
    info!(
        "handoff: page-table frames: {}; minimum for these page sizes: {}",
        stats.tables,
        minimum.total()
    );
    if stats.tables != minimum {
        warn!("handoff: the live tables use more frames than the minimum");
    }
    let regions = layout.regions().map(|r| (r.name, r.start, r.end));
    for (name, count) in walker.region_stats(&regions) {
        if count.total() != 0
            || matches!(name, "vmalloc" | "vmemmap" | "EFI runtime" | "lower half")
        {
            info!("handoff: leaves in {name}: {count}");
        }
    }
    info!(
        "handoff: Limine's tables vs baton's: {} vs {} page-table frames, \
         {} vs {} leaves (4K {} vs {}, 2M {} vs {}, 1G {} vs {})",
        limine_stats.tables.total(),
        stats.tables.total(),
        limine_stats.leaves.total(),
        stats.leaves.total(),
        limine_stats.leaves.size_4k,
        stats.leaves.size_4k,
        limine_stats.leaves.size_2m,
        stats.leaves.size_2m,
        limine_stats.leaves.size_1g,
        stats.leaves.size_1g,
    );
    info!(
        "handoff: bootloader-reclaimable memory: {} KiB, reusable once every CPU has left Limine's code",
        map.bytes(Kind::BootloaderReclaimable) >> 10
    );
    phases.done("verify");
    drop(phases);

    drop(plan);
    drop(map);
    Ok(STATE.call_once(|| State {
        levels: boot.levels,
        layout,
        root,
        mtrrs,
        pat,
        cpu,
        kernel,
        tables_built: stats.tables,
        tables_minimum: minimum,
    }))
}

/// Prints the live page tables in Linux's ptdump format, with a marker
/// line at the start of each region of the layout.
pub fn ptdump() {
    let s = state();
    // SAFETY: the physmap maps all RAM read-write, page tables included.
    let physmap = unsafe { DirectMap::new(s.layout.page_offset_base()) };
    let walker = Walker::new(&physmap, s.root, s.levels);
    let markers = s.layout.ptdump_markers();
    let _ = walker.ptdump(&mut crate::console::Writer, &markers);
}

/// Walks the page tables Limine handed over (through its HHDM, before
/// anything changes) and logs their statistics: frames per level, and
/// leaves per size for the HHDM, the kernel image and anything else.
fn limine_tables(boot: &BootInfo, layout: &Layout) -> handoff::paging::Stats {
    let (root, _) = Cr3::read();
    // SAFETY: Limine's page tables live in bootloader-reclaimable memory,
    // which its HHDM maps in every base revision; nothing changes them
    // while baton reads them.
    let hhdm = unsafe { DirectMap::new(boot.hhdm_offset) };
    let walker = Walker::new(&hhdm, root, boot.levels);
    let stats = walker.stats();
    let kernel_start = layout.kernel_image_start();
    let regions = [
        ("HHDM", boot.hhdm_offset, kernel_start),
        ("kernel", kernel_start, 0),
        ("lower half", 0, layout.lower_half_end()),
    ];
    info!(
        "limine: page tables at entry: {} frames, {} leaves",
        stats.tables,
        stats.leaves.total()
    );
    let mut named = 0;
    for (name, count) in walker.region_stats(&regions) {
        named += count.total();
        info!("limine:   leaves in {name}: {count}");
    }
    info!(
        "limine:   leaves elsewhere: {}",
        stats.leaves.total() - named
    );
    stats
}

fn log_memory_types(mtrrs: &Mtrrs, cpu_features: &Features, cpu: CpuCaps) {
    info!(
        "handoff: CPU: {}-bit physical addresses, 1G pages {}, NX {}, global pages {}, PAT {}",
        cpu_features.max_phys_bits,
        yes(cpu.gb_pages),
        yes(cpu.nx),
        yes(cpu.global),
        yes(cpu_features.pat)
    );
    if !cpu_features.mtrr {
        info!("handoff: MTRRs: none");
        return;
    }
    info!(
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

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Flushes the whole TLB, global entries included, by toggling CR4.PGE;
/// leaves PGE on when the CPU has it so that GLOBAL entries take effect.
pub fn flush_global_tlb(pge: bool) {
    if !pge {
        x86_64::instructions::tlb::flush_all();
        return;
    }
    // SAFETY: toggling PGE only flushes the TLB; the tables stay the same.
    unsafe {
        Cr4::update(|f| f.remove(Cr4Flags::PAGE_GLOBAL));
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
    }
}

/// Points entry 0 of the new root table at a fresh, empty table: no leaf
/// in the lower half, but a present top-level entry there.
fn inject_lower_half_entry(hhdm: &mut DirectMap, frames: &mut EarlyFrames, root: PhysFrame) {
    use handoff::phys::{FrameSource, PhysWindow};
    use x86_64::structures::paging::PageTableFlags;
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

/// What [`check_tables`] found.
struct Checked {
    verified: plan::Verified,
    /// RAM samples that translate to themselves, non-RAM samples unmapped.
    samples: (u64, u64),
}

/// Holds the tables under `walker` to the plan, an empty lower half and the
/// physmap samples: the checks made both before the switch (through
/// Limine's HHDM) and after it (through the physmap).
fn check_tables<W: handoff::phys::PhysWindow>(
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
fn check_lower_half<W: handoff::phys::PhysWindow>(
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
fn check_physmap_samples<W: handoff::phys::PhysWindow>(
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

/// Copies `out.len()` bytes of physical memory at `phys` through the
/// physmap, if all of it is RAM (anything else is not mapped there).
pub fn read_phys(phys: u64, out: &mut [u8]) -> bool {
    let Some(end) = phys.checked_add(out.len() as u64) else {
        return false;
    };
    let s = state();
    let map = MAP.lock();
    let mut at = phys;
    while at < end {
        match map.region_at(PhysAddr::new(at)) {
            Some(r) if r.kind.is_ram() => at = r.end,
            _ => return false,
        }
    }
    if end > s.layout.physmap_size() {
        return false;
    }
    let src = (s.layout.page_offset_base() + phys) as *const u8;
    // SAFETY: every byte of `phys..end` is RAM, which the physmap maps
    // readable at page_offset_base + address; `out` is a distinct buffer.
    unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
    true
}

/// Reads a `T` from physical memory at `phys` through the physmap, if it
/// lies in RAM.
///
/// # Safety
///
/// Every bit pattern must be a valid `T` (firmware tables: integers and
/// raw pointers), and `T` must need no drop (it is a copy of firmware
/// memory, not an owner).
pub unsafe fn read_phys_value<T>(phys: u64) -> Option<T> {
    let mut value = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the buffer is the value's own storage, `size_of::<T>()`
    // bytes; it is read back only if fully written.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(value.as_mut_ptr() as *mut u8, core::mem::size_of::<T>())
    };
    // SAFETY: fully written by `read_phys` when it returns true, and any
    // bit pattern is a valid `T` by the caller's guarantee.
    read_phys(phys, bytes).then(|| unsafe { value.assume_init() })
}
