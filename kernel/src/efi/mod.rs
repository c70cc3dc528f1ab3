//! UEFI runtime services through baton's own page tables (Linux's method;
//! the decisions are `handoff::efi`'s):
//!
//! 1. the system table, read through the physmap (its address is physical
//!    or an HHDM address depending on the base revision; `boot` already
//!    turned it into a physical one), and its memory attributes table
//!    (`systab`);
//! 2. the runtime regions merged, placed top-down in the EFI window and
//!    mapped there per descriptor (code RX, data RW + NX, MMIO uncached)
//!    (`window`), in the EFI address space only (`space`: the kernel's
//!    upper half plus the window, loaded for the length of a call);
//! 3. SetVirtualAddressMap called once, from a temporary address space that
//!    adds one-to-one mappings of the runtime regions, the rewritten map and
//!    page 0 (and the boot-services regions) to the EFI space's upper half
//!    (`svam`); then the window remapped with finer permissions (Linux's
//!    efi_runtime_update_mappings): the memory attributes table's `RO` and
//!    `XP`, or, without one, the runtime images' own PE/COFF sections
//!    (`images`), which also check the table where there is one;
//! 4. the calls: GetTime, GetVariable, GetNextVariableName, SetVariable,
//!    QueryVariableInfo, ResetSystem (`runtime`), each guarded (`call`):
//!    a fault in the firmware ends the call with `EFI_ABORTED` and switches
//!    runtime services off; the services the firmware says it does not
//!    support are never called.
//!
//! Any failure leaves runtime services unavailable and the boot going.

pub mod call;
mod images;
pub mod runtime;
pub mod secure_boot;
mod space;
mod svam;
mod systab;
pub mod tests;
mod window;

use core::fmt;

use handoff::cmdline::Inject;
use handoff::efi::pe::Images;
use handoff::efi::{AttributesTable, EfiError, Refine};
use handoff::memmap::{EfiMemoryMap, MapError};
use handoff::paging::BuildError;
use handoff::plan::{self, PlanError};
use log::{debug, info, warn};
use uefi_raw::table::runtime::RuntimeServices;

use crate::boot::{self, BootInfo, Firmware};
use crate::kspace::{AddressSpace, KernelSpace};
pub use runtime::{EfiStatus, Name, Services};
pub use svam::{release_temporary_tables, svam_boot_services_bytes};

/// The runtime services, once SetVirtualAddressMap succeeded.
static SERVICES: spin::Once<Services> = spin::Once::new();

/// The runtime services, when they work (not after a firmware fault).
pub fn services() -> Option<&'static Services> {
    SERVICES.get().filter(|_| !call::off())
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
/// takes the EFI window out of the EFI address space again, if it was
/// mapped).
pub fn init(boot: &BootInfo, kernel: &'static KernelSpace) {
    if let Err(e) = try_init(boot, kernel) {
        warn!("efi: {e}; runtime services unavailable");
        if let Some(space) = space::get() {
            window::unmap(space);
        }
    }
    secure_boot::report();
}

fn try_init(boot: &BootInfo, kernel: &'static KernelSpace) -> Result<(), Unavailable> {
    check_firmware(boot.firmware)?;
    let st_phys = boot
        .efi_system_table
        .ok_or(Unavailable::SystemTable("Limine gave no system table"))?;
    let system = systab::read(kernel, st_phys)?;
    call::set_supported(systab::supported_services(kernel, &system)?);
    let mat = systab::attributes_table(kernel, &system)?;
    let raw = boot::RAW_MAPS.lock();
    let (bytes, meta) = raw
        .efi()
        .ok_or(Unavailable::Firmware("no EFI memory map"))?;
    let max_phys_bits = crate::cpu::features::detect().max_phys_bits;
    let efi_map = EfiMemoryMap::parse(bytes, meta.desc_size, meta.desc_version, max_phys_bits)?;
    let mut runtime = window::RUNTIME.lock();
    runtime.assign(&efi_map, kernel.layout())?;
    let images = images::scan(kernel, &runtime);
    let refine = permissions(mat.as_ref(), images.as_deref());
    window::make(kernel, &runtime, refine)?;
    if let (Some(_), Some(images)) = (&mat, &images) {
        window::compare_with_images(kernel, &runtime, &**images)?;
    }
    let space = space::create(kernel)?;
    window::map(kernel, space)?;
    let rt = systab::runtime_services(kernel, &system)?;
    svam::call(kernel, space, &efi_map, meta, &runtime, &rt)?;
    let rt_va = systab::converted_runtime_services(kernel, &system, &runtime)?;
    if let Some(refine) = refine {
        window::refine(kernel, space, refine.source())?;
    }
    window::verify(kernel, space)?;
    // The table, read again: its pointers are window addresses now.
    let converted = systab::runtime_services(kernel, &system)?;
    if crate::testing::is_injected(Inject::EfiFault) {
        window::unmap_leaf(space, converted.get_time as usize as u64);
    }
    publish(converted, rt_va, space);
    Ok(())
}

/// Where the window's finer permissions come from: the attributes table
/// when the firmware has one, else the runtime images' sections; logged.
fn permissions<'a>(
    mat: Option<&'a AttributesTable<'static>>,
    images: Option<&'a Images>,
) -> Option<&'a dyn Refine> {
    match (mat, images) {
        (Some(t), _) => {
            debug!("efi: memory attributes table: {} entries", t.len());
            Some(t)
        }
        (None, Some(images)) => {
            info!(
                "efi: no memory attributes table: permissions from the runtime images' PE/COFF \
                 sections (text RX, data RW + NX, the rest R + NX)"
            );
            Some(images)
        }
        (None, None) => {
            warn!(
                "efi: no memory attributes table and no parsable runtime image: runtime code \
                 stays read + execute and runtime data non-executable, per descriptor"
            );
            None
        }
    }
}

/// Only 64-bit UEFI firmware has runtime services baton can call.
fn check_firmware(firmware: Firmware) -> Result<(), Unavailable> {
    match firmware {
        Firmware::Uefi64 => Ok(()),
        Firmware::Uefi32 => Err(Unavailable::Firmware(
            "32-bit UEFI firmware: its runtime services cannot be called from 64-bit mode",
        )),
        _ => Err(Unavailable::Firmware("BIOS boot: no UEFI runtime services")),
    }
}

/// Publishes the runtime services (`rt`, the table at window address
/// `rt_va`), called in `space`, only now: every step that can still fail,
/// and unmap the window again, is done. Reads the time once.
fn publish(rt: RuntimeServices, rt_va: u64, space: &'static AddressSpace) {
    // SAFETY: `rt`'s pointers are the firmware's, converted into the
    // window by SetVirtualAddressMap; the window is mapped in `space`,
    // just verified.
    let services = SERVICES.call_once(|| unsafe { Services::new(rt, rt_va, space) });
    match services.get_time() {
        Ok(t) => debug!(
            "efi: GetTime: {:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        ),
        Err(e) => warn!("efi: GetTime failed: {e}"),
    }
}

/// Prints the EFI address space in Linux's ptdump format (Linux's
/// `EFI_PGT_DUMP`), if there is one.
pub fn ptdump(kernel: &KernelSpace, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    let Some(space) = space::get() else {
        return Ok(());
    };
    writeln!(
        out,
        "---[ EFI address space (root {:#x}) ]---",
        space.root().start_address().as_u64()
    )?;
    space
        .walker()
        .ptdump(out, &kernel.layout().ptdump_markers())
}
