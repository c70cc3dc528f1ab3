//! The firmware's tables, read through the physmap: the system table, its
//! memory attributes table, and the runtime services table before and
//! after SetVirtualAddressMap converted its pointers.

use core::fmt::Write;

use handoff::efi::services::{self, Service, Supported};
use handoff::efi::{self, AttributesTable, RuntimeRegions};
use log::{debug, warn};
use static_cell::ConstStaticCell;
use uefi_raw::table::configuration::ConfigurationTable;
use uefi_raw::table::runtime::RuntimeServices;
use uefi_raw::table::system::SystemTable;

use super::Unavailable;
use crate::fixed::FixedStr;
use crate::kspace::KernelSpace;

/// `RUNTSERV`.
const RUNTIME_SERVICES_SIGNATURE: u64 = 0x5652_4553_544e_5552;

/// The most configuration-table entries looked at.
const MAX_CONFIG_ENTRIES: usize = 512;

/// The system table, where it is.
pub struct System {
    /// Its physical address.
    pub phys: u64,
    /// A copy, as read.
    pub table: SystemTable,
}

/// Reads and checks the system table at `phys` and logs what it says.
pub fn read(kernel: &KernelSpace, phys: u64) -> Result<System, Unavailable> {
    // SAFETY: the system table is integers and raw pointers.
    let table: SystemTable =
        unsafe { kernel.read_phys_value(phys) }.ok_or(Unavailable::SystemTable("not in RAM"))?;
    if table.header.signature != SystemTable::SIGNATURE {
        return Err(Unavailable::SystemTable("bad signature"));
    }
    let vendor = read_ucs2(kernel, table.firmware_vendor as u64);
    debug!(
        "efi: system table at {phys:#x}: UEFI {}, firmware {} revision {:#x}",
        table.header.revision, vendor, table.firmware_revision
    );
    Ok(System { phys, table })
}

/// Reads a UCS-2 string of at most 63 characters from physical memory.
fn read_ucs2(kernel: &KernelSpace, phys: u64) -> FixedStr<64> {
    let mut out = FixedStr::new();
    for i in 0..63 {
        // SAFETY: a u16 has no invalid bit patterns.
        let Some(c) = (unsafe { kernel.read_phys_value::<u16>(phys + 2 * i) }) else {
            break;
        };
        if c == 0 {
            break;
        }
        let _ = out.write_char(char::from_u32(c as u32).unwrap_or('?'));
    }
    out
}

/// The memory attributes table's bytes, copied out of firmware memory.
static MAT: ConstStaticCell<[u8; 64 * 1024]> = ConstStaticCell::new([0; 64 * 1024]);

/// The firmware's memory attributes table, if it publishes a usable one
/// (copied into baton's buffer).
pub fn attributes_table(
    kernel: &KernelSpace,
    system: &System,
) -> Result<Option<AttributesTable<'static>>, Unavailable> {
    let Some(table) = find_config_table(kernel, system, efi::MEMORY_ATTRIBUTES_TABLE_GUID)? else {
        return Ok(None);
    };
    if crate::testing::is_injected(handoff::cmdline::Inject::EfiNoMat) {
        warn!("inject: the memory attributes table at {table:#x} ignored");
        return Ok(None);
    }
    let mut header = [0u8; efi::MAT_HEADER_SIZE];
    if !kernel.read_phys(table, &mut header) {
        warn!("efi: memory attributes table at {table:#x} is not in RAM; ignored");
        return Ok(None);
    }
    let len = match AttributesTable::header(&header) {
        Ok((count, desc_size)) => efi::MAT_HEADER_SIZE + count * desc_size,
        Err(e) => {
            warn!("efi: {e}; ignored");
            return Ok(None);
        }
    };
    let Some(buf) = MAT.try_take() else {
        return Err(Unavailable::Firmware("the attributes table was read twice"));
    };
    if len > buf.len() || !kernel.read_phys(table, &mut buf[..len]) {
        warn!("efi: memory attributes table of {len} bytes unreadable; ignored");
        return Ok(None);
    }
    match AttributesTable::parse(&buf[..len]) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            warn!("efi: {e}; ignored");
            Ok(None)
        }
    }
}

/// The services the firmware supports after ExitBootServices, from its
/// `EFI_RT_PROPERTIES_TABLE` (every service when it has none).
pub fn supported_services(kernel: &KernelSpace, system: &System) -> Result<Supported, Unavailable> {
    let Some(table) = find_config_table(kernel, system, services::RT_PROPERTIES_TABLE_GUID)? else {
        debug!("efi: no RT properties table: every runtime service taken as supported");
        return Ok(Supported::ALL);
    };
    let mut bytes = [0u8; 8];
    let supported = kernel
        .read_phys(table, &mut bytes)
        .then(|| Supported::from_table(&bytes))
        .flatten();
    let Some(supported) = supported else {
        warn!(
            "efi: RT properties table at {table:#x} unreadable; every service taken as supported"
        );
        return Ok(Supported::ALL);
    };
    debug!(
        "efi: RT properties table: supported services {:#06x}{}",
        supported.mask(),
        if supported == Supported::ALL {
            " (all)"
        } else {
            ""
        }
    );
    for service in [
        Service::GetTime,
        Service::GetVariable,
        Service::GetNextVariableName,
        Service::SetVariable,
        Service::SetVirtualAddressMap,
        Service::ResetSystem,
        Service::QueryVariableInfo,
    ] {
        if !supported.supports(service) {
            debug!("efi:   {service} not supported: answered EFI_UNSUPPORTED without a call");
        }
    }
    Ok(supported)
}

/// The physical address of the configuration table with `guid`, if the
/// firmware has one.
fn find_config_table(
    kernel: &KernelSpace,
    system: &System,
    guid: uefi_raw::Guid,
) -> Result<Option<u64>, Unavailable> {
    let st = &system.table;
    let count = st
        .number_of_configuration_table_entries
        .min(MAX_CONFIG_ENTRIES);
    for i in 0..count {
        let at = st.configuration_table as u64 + (i * size_of::<ConfigurationTable>()) as u64;
        // SAFETY: a configuration table entry is a GUID and a pointer.
        let Some(entry) = (unsafe { kernel.read_phys_value::<ConfigurationTable>(at) }) else {
            return Err(Unavailable::SystemTable("configuration table not in RAM"));
        };
        if entry.vendor_guid == guid {
            return Ok(Some(entry.vendor_table as u64));
        }
    }
    Ok(None)
}

/// The runtime services table, read through its physical address (before
/// SetVirtualAddressMap).
pub fn runtime_services(
    kernel: &KernelSpace,
    system: &System,
) -> Result<RuntimeServices, Unavailable> {
    // SAFETY: the runtime services table is integers and pointers.
    let rt: RuntimeServices =
        unsafe { kernel.read_phys_value(system.table.runtime_services as u64) }.ok_or(
            Unavailable::SystemTable("runtime services table not in RAM"),
        )?;
    if rt.header.signature != RUNTIME_SERVICES_SIGNATURE {
        return Err(Unavailable::SystemTable("bad runtime services signature"));
    }
    Ok(rt)
}

/// Where the runtime services are once SetVirtualAddressMap converted the
/// firmware's pointers: the system table must now point into the window.
pub fn converted_runtime_services(
    kernel: &KernelSpace,
    system: &System,
    runtime: &RuntimeRegions,
) -> Result<u64, Unavailable> {
    // SAFETY: as in `read`.
    let st: SystemTable = unsafe { kernel.read_phys_value(system.phys) }
        .ok_or(Unavailable::SystemTable("not in RAM"))?;
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
    debug!("efi: runtime services at {rt_va:#x}");
    Ok(rt_va)
}
