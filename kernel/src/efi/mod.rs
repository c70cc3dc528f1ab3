//! UEFI runtime services through baton's own page tables (Linux's method;
//! the decisions are `handoff::efi`'s):
//!
//! 1. the system table, read through the physmap (its address is physical
//!    or an HHDM address depending on the base revision; `boot` already
//!    turned it into a physical one), and its memory attributes table
//!    ([`systab`]);
//! 2. the runtime regions merged, placed top-down in the EFI window and
//!    mapped there per descriptor (code RX, data RW + NX, MMIO uncached)
//!    ([`window`]);
//! 3. SetVirtualAddressMap called once, from a temporary address space that
//!    adds one-to-one mappings of the runtime regions, the rewritten map and
//!    page 0 (and the boot-services regions) to baton's upper half
//!    ([`svam`]); then, when the firmware has a memory attributes table,
//!    the window remapped with its `RO` and `XP` (Linux's
//!    efi_runtime_update_mappings);
//! 4. the calls: GetTime, GetVariable, GetNextVariableName, SetVariable,
//!    ResetSystem, through the window ([`runtime`], [`call`]).
//!
//! Any failure leaves runtime services unavailable and the boot going.

pub mod call;
pub mod runtime;
mod svam;
mod systab;
pub mod tests;
mod window;

use core::fmt;

use handoff::efi::EfiError;
use handoff::memmap::{EfiMemoryMap, MapError};
use handoff::paging::BuildError;
use handoff::plan::{self, PlanError};
use log::{info, warn};
use uefi_raw::table::runtime::RuntimeServices;

use crate::boot::{self, BootInfo, Firmware};
use crate::kspace::KernelSpace;
pub use runtime::{EfiStatus, Name, Services};
pub use svam::release_temporary_tables;

/// The runtime services, once SetVirtualAddressMap succeeded.
static SERVICES: spin::Once<Services> = spin::Once::new();

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
pub fn init(boot: &BootInfo, kernel: &'static KernelSpace) {
    if let Err(e) = try_init(boot, kernel) {
        warn!("efi: {e}; runtime services unavailable");
        window::unmap(kernel);
    }
}

fn try_init(boot: &BootInfo, kernel: &'static KernelSpace) -> Result<(), Unavailable> {
    check_firmware(boot.firmware)?;
    let st_phys = boot
        .efi_system_table
        .ok_or(Unavailable::SystemTable("Limine gave no system table"))?;
    let system = systab::read(kernel, st_phys)?;
    let mat = systab::attributes_table(kernel, &system)?;
    match &mat {
        Some(t) => info!("efi: memory attributes table: {} entries", t.len()),
        None => warn!(
            "efi: no memory attributes table: runtime code stays read-only + executable \
             and runtime data non-executable, per descriptor"
        ),
    }
    let raw = boot::RAW_MAPS.lock();
    let (bytes, meta) = raw
        .efi()
        .ok_or(Unavailable::Firmware("no EFI memory map"))?;
    let max_phys_bits = crate::cpu::features::detect().max_phys_bits;
    let efi_map = EfiMemoryMap::parse(bytes, meta.desc_size, meta.desc_version, max_phys_bits)?;
    let mut runtime = window::RUNTIME.lock();
    runtime.assign(&efi_map, kernel.layout())?;
    window::make(kernel, &runtime, mat.as_ref())?;
    window::map(kernel)?;
    let rt: RuntimeServices = systab::runtime_services(kernel, &system)?;
    svam::call(kernel, &efi_map, meta, &runtime, &rt)?;
    let rt_va = systab::converted_runtime_services(kernel, &system, &runtime)?;
    if mat.is_some() {
        window::refine(kernel)?;
    }
    window::verify(kernel)?;
    publish(rt_va);
    Ok(())
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

/// Publishes the runtime services at their window address `rt_va` (only
/// now: every step that can still fail, and unmap the window again, is
/// done) and reads the time once.
fn publish(rt_va: u64) {
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
}
