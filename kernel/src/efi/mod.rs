//! UEFI runtime services through baton's own page tables (Linux's method;
//! the decisions are `handoff::efi`'s):
//!
//! 1. the system table, read through the physmap (its address is physical
//!    or an HHDM address depending on the base revision; `boot` already
//!    turned it into a physical one);
//! 2. the runtime regions merged, placed top-down in the EFI window and
//!    mapped there per descriptor (code RX, data RW + NX, MMIO uncached);
//! 3. SetVirtualAddressMap called once, from a temporary address space that
//!    adds one-to-one mappings of the runtime regions, the rewritten map and
//!    page 0 (and the boot-services regions) to baton's upper half; then,
//!    when the firmware has a memory attributes table, the window remapped
//!    with its `RO` and `XP` (Linux's efi_runtime_update_mappings);
//! 4. the calls: GetTime, GetVariable, GetNextVariableName, SetVariable,
//!    ResetSystem, through the window.
//!
//! Any failure leaves runtime services unavailable and the boot going.

pub mod call;
pub mod runtime;
pub mod secure_boot;
pub mod tests;

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use handoff::efi::{self, AttributesTable, EfiError, Runtime, Window};
use handoff::memmap::{EfiMemoryMap, MapError};
use handoff::paging::{BuildError, Builder, UnmapError, Unmapper, Walker};
use handoff::phys::{FrameSource, PhysWindow};
use handoff::plan::{self, PlanError};
use log::{info, warn};
use uefi_raw::table::boot::MemoryDescriptor;
use uefi_raw::table::configuration::ConfigurationTable;
use uefi_raw::table::runtime::RuntimeServices;
use uefi_raw::table::system::SystemTable;
use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use crate::boot::{self, BootInfo, Firmware};
use crate::fixed::FixedStr;
use crate::shim::{
    self,
    direct::{DirectMap, EarlyFrames},
};
pub use runtime::{EfiStatus, Name, Services};

/// Set by `inject=svam-version` (test runs): SetVirtualAddressMap gets a
/// descriptor version the firmware does not know.
static BAD_SVAM_VERSION: AtomicBool = AtomicBool::new(false);

/// Makes SetVirtualAddressMap fail (`inject=svam-version`, test runs only).
pub fn inject_bad_svam_version() {
    BAD_SVAM_VERSION.store(true, Ordering::SeqCst);
}

/// Whether `inject=svam-version` asked SetVirtualAddressMap to fail.
pub fn svam_failure_injected() -> bool {
    BAD_SVAM_VERSION.load(Ordering::SeqCst)
}

/// The bytes of boot-services memory the temporary address space maps
/// one-to-one for SetVirtualAddressMap, once it is built.
static SVAM_BOOT_SERVICES: spin::Once<u64> = spin::Once::new();

/// How much boot-services memory SetVirtualAddressMap's address space
/// mapped one-to-one; `None` before it was built (or on BIOS boots).
pub fn svam_boot_services_bytes() -> Option<u64> {
    SVAM_BOOT_SERVICES.get().copied()
}

/// The most page tables of the temporary address space that are recorded
/// to be given back.
pub const MAX_TEMP_TABLES: usize = 128;

/// The temporary address space's own tables (its root and everything under
/// its lower half), from the early frames: given back to the frame
/// allocator once it runs ([`release_temporary_tables`]).
static TEMP_TABLES: spin::Mutex<([u64; MAX_TEMP_TABLES], usize)> =
    spin::Mutex::new(([0; MAX_TEMP_TABLES], 0));

/// Records `frame` and the tables under entries `entries` of it, a table
/// at `level` (1 = page table), in `TEMP_TABLES`. False when they do not
/// all fit.
fn record_tables(
    physmap: &DirectMap,
    frame: PhysFrame,
    level: usize,
    entries: core::ops::Range<usize>,
    out: &mut ([u64; MAX_TEMP_TABLES], usize),
) -> bool {
    if out.1 == MAX_TEMP_TABLES {
        return false;
    }
    out.0[out.1] = frame.start_address().as_u64();
    out.1 += 1;
    if level == 1 {
        return true;
    }
    let table = physmap.table(frame);
    entries.into_iter().all(|i| {
        let e = &table[i];
        let flags = e.flags();
        if !flags.contains(PageTableFlags::PRESENT) || flags.contains(PageTableFlags::HUGE_PAGE) {
            return true;
        }
        let child = PhysFrame::containing_address(e.addr());
        record_tables(physmap, child, level - 1, 0..512, out)
    })
}

/// Gives the temporary address space's page tables to the frame
/// allocator, which holds them back as early page tables until now.
pub fn release_temporary_tables() {
    let mut tables = TEMP_TABLES.lock();
    let (frames, n) = (tables.0, tables.1);
    if n == 0 || TEMP_TABLES_RELEASED.load(Ordering::SeqCst) {
        return;
    }
    let mut allocator = crate::mm::frames::FRAMES.lock();
    for (i, &f) in frames[..n].iter().enumerate() {
        let frame = PhysFrame::containing_address(PhysAddr::new(f));
        if let Err(e) = allocator.unreserve(frame, handoff::frames::Reason::PageTables) {
            // The first `i` went back; the rest stay reserved.
            warn!("efi: temporary page table {f:#x} not given back ({e}); {i} of {n} were");
            tables.1 = i;
            TEMP_TABLES_RELEASED.store(true, Ordering::SeqCst);
            return;
        }
    }
    info!("efi: the temporary address space's {n} page-table frames given back to the allocator");
    TEMP_TABLES_RELEASED.store(true, Ordering::SeqCst);
}

/// Set once the temporary address space's tables are given back.
static TEMP_TABLES_RELEASED: AtomicBool = AtomicBool::new(false);

/// The temporary address space's tables, once given back (for tests).
pub fn released_temporary_tables(visit: impl FnMut(PhysFrame)) {
    if TEMP_TABLES_RELEASED.load(Ordering::SeqCst) {
        let tables = TEMP_TABLES.lock();
        tables.0[..tables.1]
            .iter()
            .map(|&f| PhysFrame::containing_address(PhysAddr::new(f)))
            .for_each(visit);
    }
}

/// The runtime services, once SetVirtualAddressMap succeeded.
static SERVICES: spin::Once<Services> = spin::Once::new();
static RUNTIME: spin::Mutex<Runtime> = spin::Mutex::new(Runtime::new());
static WINDOW: spin::Mutex<Window> = spin::Mutex::new(Window::new());
/// The window with the attributes table's permissions, made before
/// SetVirtualAddressMap and mapped after it.
static REFINED: spin::Mutex<Window> = spin::Mutex::new(Window::new());
static MAT: spin::Mutex<[u8; 64 * 1024]> = spin::Mutex::new([0; 64 * 1024]);

/// The copy of the runtime descriptors for SetVirtualAddressMap, in the
/// kernel image so that its physical address is known and stable.
#[repr(C, align(4096))]
struct MapCopy(UnsafeCell<[u8; 128 * 1024]>);
// SAFETY: written once, under `init`, before the only call that reads it.
unsafe impl Sync for MapCopy {}
static MAP_COPY: MapCopy = MapCopy(UnsafeCell::new([0; 128 * 1024]));

/// `RUNTSERV`.
const RUNTIME_SERVICES_SIGNATURE: u64 = 0x5652_4553_544e_5552;

/// The runtime services, when they work.
pub fn services() -> Option<&'static Services> {
    SERVICES.get()
}

/// Why runtime services are unavailable.
#[derive(Debug)]
pub enum Unavailable {
    Firmware(&'static str),
    SystemTable(&'static str),
    Map(MapError),
    Window(EfiError),
    Build(BuildError),
    Plan(PlanError),
    NoFrames,
    NotIdentityMappable(u64),
    SetVirtualAddressMap(EfiStatus),
    Verify(plan::VerifyError),
    WxFound(u64),
    Refine(handoff::paging::UnmapError),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Firmware(why) => f.write_str(why),
            Unavailable::SystemTable(why) => write!(f, "EFI system table: {why}"),
            Unavailable::Map(e) => write!(f, "EFI memory map: {e}"),
            Unavailable::Window(e) => write!(f, "{e}"),
            Unavailable::Build(e) => write!(f, "mapping the EFI window: {e}"),
            Unavailable::Plan(e) => write!(f, "EFI window: {e}"),
            Unavailable::NoFrames => write!(f, "no frames left for page tables"),
            Unavailable::NotIdentityMappable(phys) => write!(
                f,
                "runtime region at {phys:#x} lies above the lower half and cannot be mapped 1:1"
            ),
            Unavailable::SetVirtualAddressMap(s) => write!(f, "SetVirtualAddressMap failed: {s}"),
            Unavailable::Verify(e) => write!(f, "live tables differ from the plan: {e}"),
            Unavailable::WxFound(n) => write!(f, "{n} W+X pages after mapping the EFI window"),
            Unavailable::Refine(e) => {
                write!(
                    f,
                    "unmapping the EFI window to apply the attributes table: {e}"
                )
            }
        }
    }
}

macro_rules! from_error {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Unavailable {
            fn from(e: $ty) -> Self {
                Unavailable::$variant(e)
            }
        }
    )*};
}
from_error!(
    Map(MapError),
    Window(EfiError),
    Build(BuildError),
    Plan(PlanError)
);

/// Sets up the runtime services; logs why when they cannot be (and then
/// takes the EFI window out of the page tables again, if it was mapped).
pub fn init(boot: &BootInfo) {
    if let Err(e) = try_init(boot) {
        warn!("efi: {e}; runtime services unavailable");
        unmap_window();
    }
    secure_boot::report();
}

/// Unmaps whatever of the EFI window is mapped and drops it from the plan.
fn unmap_window() {
    let window = WINDOW.lock();
    if window.mappings().is_empty() {
        return;
    }
    let s = shim::state();
    // SAFETY: the physmap maps all RAM read-write, page tables included.
    let mut physmap = unsafe { DirectMap::new(s.layout.page_offset_base()) };
    if let Err(e) = unmap_mappings(&mut physmap, &window) {
        warn!("efi: unmapping the window: {e}");
    }
    // The window's entries are global: a CR3 reload would keep them.
    shim::flush_global_tlb(s.cpu.global);
    shim::PLAN.lock().remove_efi_window();
}

/// Maps `window` into baton's tables, with frames from `frames`.
fn map_window(
    physmap: &mut DirectMap,
    frames: &mut EarlyFrames,
    window: &Window,
) -> Result<(), BuildError> {
    let s = shim::state();
    let mut builder = Builder::on_root(physmap, frames, s.levels, s.root);
    window
        .mappings()
        .iter()
        .try_for_each(|m| builder.map(&m.mapping))
}

/// Unmaps every mapping of `window` from baton's tables (the caller
/// flushes the TLB), going on past failures; returns the first. Emptied
/// tables stay with the early frames (no allocator yet).
fn unmap_mappings(physmap: &mut DirectMap, window: &Window) -> Result<(), UnmapError> {
    let s = shim::state();
    let mut unmapper = Unmapper::new(physmap, s.root, s.levels);
    let mut first = Ok(());
    for m in window.mappings() {
        let done = unmapper.unmap(m.mapping.virt, m.mapping.len, |_| {}, |_, _| {});
        if let (Err(e), Ok(())) = (done, &first) {
            first = Err(e);
        }
    }
    first
}

/// Reads a UCS-2 string of at most 63 characters from physical memory.
fn read_ucs2(phys: u64) -> FixedStr<64> {
    let mut out = FixedStr::new();
    for i in 0..63 {
        // SAFETY: a u16 has no invalid bit patterns.
        let Some(c) = (unsafe { shim::read_phys_value::<u16>(phys + 2 * i) }) else {
            break;
        };
        if c == 0 {
            break;
        }
        let _ = out.write_char(char::from_u32(c as u32).unwrap_or('?'));
    }
    out
}

fn try_init(boot: &BootInfo) -> Result<(), Unavailable> {
    match boot.firmware {
        Firmware::Uefi64 => {}
        Firmware::Uefi32 => {
            return Err(Unavailable::Firmware(
                "32-bit UEFI firmware: its runtime services cannot be called from 64-bit mode",
            ));
        }
        _ => return Err(Unavailable::Firmware("BIOS boot: no UEFI runtime services")),
    }
    let st_phys = boot
        .efi_system_table
        .ok_or(Unavailable::SystemTable("Limine gave no system table"))?;
    // SAFETY: the system table is integers and raw pointers.
    let st: SystemTable =
        unsafe { shim::read_phys_value(st_phys) }.ok_or(Unavailable::SystemTable("not in RAM"))?;
    if st.header.signature != SystemTable::SIGNATURE {
        return Err(Unavailable::SystemTable("bad signature"));
    }
    let vendor = read_ucs2(st.firmware_vendor as u64);
    info!(
        "efi: system table at {st_phys:#x}: UEFI {}, firmware {} revision {:#x}",
        st.header.revision, vendor, st.firmware_revision
    );

    // The memory attributes table, if the firmware has one.
    let mut mat_buf = MAT.lock();
    let mut mat_len = 0;
    let count = st.number_of_configuration_table_entries.min(512);
    for i in 0..count {
        let at = st.configuration_table as u64 + (i * size_of::<ConfigurationTable>()) as u64;
        // SAFETY: a configuration table entry is a GUID and a pointer.
        let Some(entry) = (unsafe { shim::read_phys_value::<ConfigurationTable>(at) }) else {
            return Err(Unavailable::SystemTable("configuration table not in RAM"));
        };
        if entry.vendor_guid != efi::MEMORY_ATTRIBUTES_TABLE_GUID {
            continue;
        }
        let table = entry.vendor_table as u64;
        let mut header = [0u8; efi::MAT_HEADER_SIZE];
        if !shim::read_phys(table, &mut header) {
            warn!("efi: memory attributes table at {table:#x} is not in RAM; ignored");
            break;
        }
        match AttributesTable::header(&header) {
            Ok((count, desc_size)) => {
                let len = efi::MAT_HEADER_SIZE + count * desc_size;
                if len <= mat_buf.len() && shim::read_phys(table, &mut mat_buf[..len]) {
                    mat_len = len;
                } else {
                    warn!("efi: memory attributes table of {len} bytes unreadable; ignored");
                }
            }
            Err(e) => warn!("efi: {e}; ignored"),
        }
        break;
    }
    let mat = match AttributesTable::parse(&mat_buf[..mat_len]) {
        Ok(t) => Some(t),
        Err(e) if mat_len != 0 => {
            warn!("efi: {e}; ignored");
            None
        }
        Err(_) => None,
    };
    match &mat {
        Some(t) => info!("efi: memory attributes table: {} entries", t.len()),
        None => warn!(
            "efi: no memory attributes table: runtime code stays read-only + executable \
             and runtime data non-executable, per descriptor"
        ),
    }

    // Regions, window addresses, window mappings.
    let s = shim::state();
    let raw = boot::RAW_MAPS.lock();
    let (bytes, meta) = raw
        .efi()
        .ok_or(Unavailable::Firmware("no EFI memory map"))?;
    let max_phys_bits = crate::cpu::features::detect().max_phys_bits;
    let efi_map = EfiMemoryMap::parse(bytes, meta.desc_size, meta.desc_version, max_phys_bits)?;
    let mut runtime = RUNTIME.lock();
    runtime.assign(&efi_map, s.layout)?;
    // Per descriptor first; the attributes table refines it once
    // SetVirtualAddressMap is done, as Linux's efi_runtime_update_mappings
    // does. Computed now, so that a table baton cannot use is known before
    // the firmware is committed to virtual mode.
    let mut window = WINDOW.lock();
    window.make(&runtime, None, &s.pat, &s.mtrrs, s.cpu.nx, s.cpu.global)?;
    let mut refined = REFINED.lock();
    if let Some(table) = mat.as_ref() {
        refined.make(
            &runtime,
            Some(table),
            &s.pat,
            &s.mtrrs,
            s.cpu.nx,
            s.cpu.global,
        )?;
    }
    for r in runtime.regions() {
        info!(
            "efi: runtime {:#012x}-{:#012x} {:?} {} -> {:#x}",
            r.phys,
            r.phys + r.len,
            r.ty,
            r.mem_type(),
            r.virt
        );
    }

    let mut frames_guard = shim::EARLY_FRAMES.lock();
    let frames = frames_guard.as_mut().ok_or(Unavailable::NoFrames)?;
    // SAFETY: the physmap maps all RAM read-write, page tables included.
    let mut physmap = unsafe { DirectMap::new(s.layout.page_offset_base()) };
    map_window(&mut physmap, frames, &window)?;
    shim::PLAN.lock().add_efi_window(&window)?;
    info!(
        "efi: window: {} mappings, permissions per descriptor",
        window.mappings().len()
    );

    // The map SetVirtualAddressMap takes, at a known physical address.
    // SAFETY: nothing else uses the buffer; `init` runs once.
    let copy = unsafe { &mut *MAP_COPY.0.get() };
    let map_len = efi::rewrite_map(&efi_map, &runtime, copy)?;
    let map_phys = s.kernel.phys_base.as_u64() + (copy.as_ptr() as u64 - s.kernel.virt_base);

    // The temporary address space: baton's upper half plus 1:1 mappings.
    let temp_root = frames.allocate_frame().ok_or(Unavailable::NoFrames)?;
    let main = physmap.table(s.root).clone();
    let temp = physmap.table_mut(temp_root);
    temp.zero();
    for i in 256..512 {
        temp[i] = main[i].clone();
    }
    let lower_end = s.layout.lower_half_end();
    // 1:1 besides the runtime regions: the rewritten map, page 0 (some
    // firmware writes it during the call) and, as Linux does for firmware
    // that still touches them, the boot-services regions (not freed yet),
    // as the EFI map gives them: Limine 9.3 and later call them
    // bootloader-reclaimable, but they are the firmware's all the same.
    let mut extra = [(0u64, 0u64); 64];
    let mut n = 0;
    extra[n] = (map_phys, map_len as u64);
    n += 1;
    let mut boot_services = [(0u64, 0u64); 62];
    let boot_services = match handoff::memmap::boot_services::ranges(&efi_map, &mut boot_services) {
        Ok(count) => &boot_services[..count],
        Err(_) => {
            warn!("efi: more boot-services ranges than the temporary tables take; none mapped");
            &boot_services[..0]
        }
    };
    let covered = |a: u64| {
        runtime.region_of(a).is_some() || boot_services.iter().any(|&(s, e)| s <= a && a < e)
    };
    if !covered(0) {
        extra[n] = (0, 4096);
        n += 1;
    }
    let mut boot_services_bytes = 0;
    for &(start, end) in boot_services {
        if n == extra.len() {
            warn!(
                "efi: more boot-services regions than the temporary tables take; the rest unmapped"
            );
            break;
        }
        extra[n] = (start, end - start);
        n += 1;
        boot_services_bytes += end - start;
    }
    SVAM_BOOT_SERVICES.call_once(|| boot_services_bytes);
    let extra = &extra[..n];
    {
        let mut builder = Builder::on_root(&mut physmap, frames, s.levels, temp_root);
        for m in efi::identity_mappings(&runtime, extra, &s.pat, s.cpu.nx) {
            if m.virt + m.len > lower_end {
                return Err(Unavailable::NotIdentityMappable(m.virt));
            }
            builder.map(&m)?;
        }
    }
    drop(frames_guard);
    {
        let mut tables = TEMP_TABLES.lock();
        tables.1 = 0;
        // Its lower half is its own; the upper half is baton's.
        if !record_tables(&physmap, temp_root, s.levels.count(), 0..256, &mut tables) {
            warn!("efi: more temporary page tables than recorded; they stay reserved");
            tables.1 = 0;
        }
    }

    // SAFETY: the runtime services table is integers and pointers.
    let rt: RuntimeServices = unsafe { shim::read_phys_value(st.runtime_services as u64) }.ok_or(
        Unavailable::SystemTable("runtime services table not in RAM"),
    )?;
    if rt.header.signature != RUNTIME_SERVICES_SIGNATURE {
        return Err(Unavailable::SystemTable("bad runtime services signature"));
    }
    let count = map_len / meta.desc_size;
    let version = if svam_failure_injected() {
        let bad = meta.desc_version + 0x100;
        warn!("inject: SetVirtualAddressMap gets descriptor version {bad}");
        bad
    } else {
        meta.desc_version
    };
    // SAFETY: the temporary tables share baton's upper half (this code, its
    // stack and data, the EFI stack) and map the firmware 1:1, as it runs
    // before switching to virtual addressing; CR3 goes back right after.
    let status = unsafe {
        Cr3::write(temp_root, Cr3Flags::empty());
        let status = call::call(|| {
            (rt.set_virtual_address_map)(
                map_len,
                meta.desc_size,
                version,
                map_phys as *mut MemoryDescriptor,
            )
        });
        Cr3::write(s.root, Cr3Flags::empty());
        status
    };
    if !status.is_success() {
        return Err(Unavailable::SetVirtualAddressMap(EfiStatus(status)));
    }
    info!(
        "efi: SetVirtualAddressMap({count} descriptors) from a temporary address space \
         (root {:#x}, no longer used): success",
        temp_root.start_address().as_u64()
    );

    // The firmware converted its pointers: the system table now points to
    // the runtime services in the window.
    // SAFETY: as above.
    let st: SystemTable =
        unsafe { shim::read_phys_value(st_phys) }.ok_or(Unavailable::SystemTable("not in RAM"))?;
    let rt_va = st.runtime_services as u64;
    let in_window = runtime
        .regions()
        .iter()
        .any(|r| (r.virt..r.virt + r.len).contains(&rt_va));
    if !in_window {
        return Err(Unavailable::SystemTable(
            "runtime services pointer not converted into the EFI window",
        ));
    }
    info!("efi: runtime services at {rt_va:#x}");

    if mat.is_some() {
        refine_window(&mut physmap, &mut window, &refined)?;
    }
    drop(refined);
    verify_live_tables(&physmap)?;
    // Published only now: every step that can still fail (and unmap the
    // window again) is done.
    // SAFETY: the table lies in a runtime region mapped in the window,
    // where the firmware just moved its runtime services, and the live
    // tables were just verified to hold the window.
    let services = SERVICES.call_once(|| unsafe { Services::new(rt_va as *const RuntimeServices) });
    match services.get_time() {
        Ok(t) => info!(
            "efi: GetTime: {:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        ),
        Err(e) => warn!("efi: GetTime failed: {e}"),
    }
    Ok(())
}

/// Replaces the live window's mappings (per descriptor) by `refined` (with
/// the attributes table's `RO` and `XP`), in the tables and in the plan.
/// Nothing runs in the window meanwhile: the firmware is only called after.
fn refine_window(
    physmap: &mut DirectMap,
    window: &mut Window,
    refined: &Window,
) -> Result<(), Unavailable> {
    let s = shim::state();
    unmap_mappings(physmap, window).map_err(Unavailable::Refine)?;
    // From here on, a failure leaves the window to `unmap_window`, which
    // unmaps whatever `window` holds.
    window.clone_from(refined);
    {
        let mut frames_guard = shim::EARLY_FRAMES.lock();
        let frames = frames_guard.as_mut().ok_or(Unavailable::NoFrames)?;
        map_window(physmap, frames, window)?;
    }
    // The old entries are global: a CR3 reload would keep them.
    shim::flush_global_tlb(s.cpu.global);
    let mut plan = shim::PLAN.lock();
    plan.remove_efi_window();
    plan.add_efi_window(window)?;
    info!(
        "efi: window after SetVirtualAddressMap: {} mappings, permissions from the memory \
         attributes table",
        window.mappings().len()
    );
    Ok(())
}

/// Holds the live tables, now with the EFI window, to the plan and W^X.
fn verify_live_tables(physmap: &DirectMap) -> Result<(), Unavailable> {
    let s = shim::state();
    let walker = Walker::new(physmap, s.root, s.levels);
    let verified = shim::verify_live(physmap).map_err(Unavailable::Verify)?;
    let window = s.layout.region(handoff::layout::RegionKind::EfiRuntime);
    let leaves = walker.leaf_count_in(window.start, window.end);
    info!(
        "efi: live tables match the plan with the EFI window: {} leaves in all, \
         EFI window {leaves}",
        verified.leaves.total(),
    );
    let wx = walker.check_wx(|range| warn!("{range}"));
    if wx.passed() {
        info!("{wx}");
        Ok(())
    } else {
        log::error!("{wx}");
        Err(Unavailable::WxFound(wx.pages))
    }
}

/// The physical address the window address `virt` maps, for tests.
pub fn window_phys(virt: u64) -> Option<PhysAddr> {
    let s = shim::state();
    // SAFETY: the physmap maps all RAM, page tables included.
    let physmap = unsafe { DirectMap::new(s.layout.page_offset_base()) };
    Walker::new(&physmap, s.root, s.levels)
        .translate(virt)
        .map(|t| t.phys)
}
