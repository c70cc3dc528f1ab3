//! Self-tests of the UEFI runtime services, the EFI address space they run
//! in, and the rules baton keeps when calling them.

use uefi_raw::table::runtime::VariableAttributes;
use uefi_raw::{Guid, guid};

use handoff::cmdline::Inject;

use handoff::efi::services::{MIN_VARIABLE_RESERVE, Service, Supported};

use super::{Name, call, services, space, window};
use crate::selftest::{Test, TestResult};
use crate::{boot, check, fail, kspace, testing};

/// baton's vendor GUID for its own variables.
pub const BATON_GUID: Guid = guid!("6a3a8c3e-3b1f-4f4b-9a77-0ba70ba70ba7");

pub const TESTS: &[Test] = &[
    Test {
        name: "efi: runtime services exactly on UEFI boots, their window unmapped otherwise",
        run: available_on_uefi,
    },
    Test {
        name: "efi: the kernel's tables map nothing in the EFI window",
        run: window_not_in_kernel_tables,
    },
    Test {
        name: "efi: the runtime images' PE sections agree with the memory attributes table",
        run: images_agree_with_table,
    },
    Test {
        name: "efi: a service the firmware does not support is answered without entering it",
        run: unsupported_not_called,
    },
    Test {
        name: "efi: a write that would leave less than 5 KiB of variable storage is refused",
        run: variable_reserve_kept,
    },
    Test {
        name: "efi: the temporary address space's page tables are back with the allocator",
        run: temporary_tables_released,
    },
    Test {
        name: "efi: SetVirtualAddressMap ran with all boot-services memory mapped one-to-one",
        run: boot_services_during_svam,
    },
    Test {
        name: "efi: every window page keeps its physical offset within 2 MiB",
        run: window_keeps_2m_offsets,
    },
    Test {
        name: "efi: runtime services and their code live in the EFI window",
        run: in_window,
    },
    Test {
        name: "efi: GetTime gives a plausible date",
        run: get_time,
    },
    Test {
        name: "efi: GetNextVariableName lists the variables",
        run: list_variables,
    },
    Test {
        name: "efi: SetVariable then GetVariable reads the value back",
        run: set_get_variable,
    },
    Test {
        name: "efi: the non-volatile boot counter goes up by one",
        run: boot_counter,
    },
];

/// The runtime services, or the reason the test that needs them skips.
fn runtime() -> Result<&'static super::Services, crate::selftest::NotPassed> {
    if let Some(rt) = services() {
        return Ok(rt);
    }
    let firmware = boot::info().firmware;
    if firmware != boot::Firmware::Uefi64 {
        Err(crate::selftest::skipped(format_args!(
            "no runtime services: {} firmware",
            firmware.name()
        )))
    } else {
        Err(crate::selftest::skipped(format_args!(
            "runtime services off: see the efi: lines"
        )))
    }
}

fn available_on_uefi() -> TestResult {
    let uefi = boot::info().firmware == boot::Firmware::Uefi64;
    let svam = testing::is_injected(Inject::SvamVersion);
    let fault = testing::is_injected(Inject::EfiFault);
    check!(
        services().is_some() == (uefi && !svam && !fault),
        "firmware {:?}, SetVirtualAddressMap failure injected: {svam}, firmware fault \
         injected: {fault}, runtime services available: {}",
        boot::info().firmware,
        services().is_some()
    );
    check!(
        call::off() == (uefi && fault && !svam),
        "runtime services switched off after a firmware fault: {}",
        call::off()
    );
    if services().is_none()
        && !call::off()
        && let Some(space) = space::get()
    {
        // Whatever was placed in the window is mapped no more.
        for r in window::RUNTIME.lock().regions() {
            check!(
                window::window_phys(space, r.virt).is_none(),
                "window address {:#x} still mapped without runtime services",
                r.virt
            );
        }
    }
    Ok(())
}

/// The window exists in the EFI address space only: walked from the
/// kernel's root, the whole range holds no leaf.
fn window_not_in_kernel_tables() -> TestResult {
    let kernel = kspace::get();
    let region = kernel
        .layout()
        .region(handoff::layout::RegionKind::EfiRuntime);
    let leaves = kernel.walker().leaf_count_in(region.start, region.end);
    check!(
        leaves.total() == 0,
        "the kernel's tables map {leaves} in the EFI window {:#x}-{:#x}",
        region.start,
        region.end
    );
    if let Some(rt) = services() {
        let get_time = rt.get_time_address();
        check!(
            kernel.translate(get_time).is_none(),
            "GetTime's window address {get_time:#x} is mapped in the kernel's tables"
        );
    }
    Ok(())
}

/// Linux's rule for the EFI window (`efi_map_region`): each region lies
/// at a virtual address with the same offset within 2 MiB as its
/// physical one, so that 2 MiB pages stay possible. Held leaf by leaf on
/// the live EFI address space, not on the plan.
fn window_keeps_2m_offsets() -> TestResult {
    const LARGE: u64 = 2 << 20;
    runtime()?;
    let space =
        space::get().ok_or_else(|| fail!("runtime services without an EFI address space"))?;
    let layout = kspace::get().layout();
    let mut leaves = 0;
    for leaf in space
        .walker()
        .leaves_in(layout.efi_window_start(), layout.efi_window_end())
    {
        let phys = leaf.phys.as_u64();
        check!(
            leaf.virt % LARGE == phys % LARGE,
            "the window maps {:#x} to {phys:#x}: offsets {:#x} and {:#x} within 2 MiB",
            leaf.virt,
            leaf.virt % LARGE,
            phys % LARGE
        );
        leaves += 1;
    }
    check!(
        leaves > 0,
        "the EFI address space maps nothing in the window"
    );
    Ok(())
}

fn images_agree_with_table() -> TestResult {
    let Some(pages) = window::disagreeing_pages() else {
        crate::skip!("nothing to compare: no table or no images");
    };
    check!(
        pages == 0,
        "the PE sections and the attributes table disagree on {pages} pages (see the efi: lines)"
    );
    Ok(())
}

fn unsupported_not_called() -> TestResult {
    let rt = runtime()?;
    let supported = call::supported();
    let before = call::entered();
    call::set_supported(Supported::from_mask(
        supported.mask() & !Service::GetTime.bit(),
    ));
    let answer = rt.get_time();
    call::set_supported(supported);
    check!(
        answer == Err(super::EfiStatus(uefi_raw::Status::UNSUPPORTED)),
        "GetTime, marked unsupported, answered {answer:?}"
    );
    check!(
        call::entered() == before,
        "GetTime, marked unsupported, entered the firmware"
    );
    rt.get_time()
        .map_err(|e| fail!("GetTime once supported again: {e}"))?;
    Ok(())
}

fn variable_reserve_kept() -> TestResult {
    let rt = runtime()?;
    let attrs = VariableAttributes::NON_VOLATILE
        | VariableAttributes::BOOTSERVICE_ACCESS
        | VariableAttributes::RUNTIME_ACCESS;
    let (_, remaining, _) = rt
        .query_variable_info(attrs)
        .map_err(|e| fail!("QueryVariableInfo: {e}"))?;
    check!(
        remaining > MIN_VARIABLE_RESERVE,
        "only {remaining} bytes of storage left"
    );
    // Just too much: it would leave one byte less than the reserve.
    let data = alloc::vec![0x5au8; (remaining - MIN_VARIABLE_RESERVE + 1) as usize];
    let name = Name::new("BatonTooLarge").expect("short ASCII name");
    let before = call::entered();
    let refused = rt.set_variable(&name, &BATON_GUID, attrs, &data);
    check!(
        refused == Err(super::EfiStatus(uefi_raw::Status::OUT_OF_RESOURCES)),
        "a write of {} bytes with {remaining} left: {refused:?}",
        data.len()
    );
    // QueryVariableInfo was called; SetVariable was not.
    check!(
        call::entered() == before + 1,
        "{} firmware calls for a refused write",
        call::entered() - before
    );
    Ok(())
}

fn temporary_tables_released() -> TestResult {
    let uefi = boot::info().firmware == boot::Firmware::Uefi64;
    let mut n = 0;
    let mut reserved = None;
    crate::mm::frames::given_back(|frame| {
        n += 1;
        if let handoff::frames::FrameState::Reserved(reason) =
            crate::mm::frames::FRAMES.lock().state(frame)
        {
            reserved.get_or_insert((frame, reason));
        }
    });
    if !uefi {
        crate::skip!(
            "no SetVirtualAddressMap: {} firmware",
            boot::info().firmware.name()
        );
    }
    check!(n > 0, "no temporary page tables given back");
    if let Some((frame, reason)) = reserved {
        return Err(fail!(
            "temporary page table {:#x} still reserved ({reason})",
            frame.start_address().as_u64()
        ));
    }
    Ok(())
}

fn in_window() -> TestResult {
    let rt = runtime()?;
    let layout = kspace::get().layout();
    let space =
        space::get().ok_or_else(|| fail!("runtime services without an EFI address space"))?;
    let window = layout.efi_window_start()..layout.efi_window_end();
    let table = rt.table_address();
    check!(
        window.contains(&table),
        "runtime services table at {table:#x}"
    );
    let get_time = rt.get_time_address();
    check!(window.contains(&get_time), "GetTime at {get_time:#x}");
    check!(
        window::window_phys(space, get_time).is_some(),
        "GetTime's address {get_time:#x} is not mapped"
    );
    Ok(())
}

fn get_time() -> TestResult {
    let rt = runtime()?;
    let t = rt.get_time().map_err(|e| fail!("GetTime: {e}"))?;
    check!(
        (2024..2100).contains(&t.year)
            && (1..=12).contains(&t.month)
            && (1..=31).contains(&t.day)
            && t.hour < 24
            && t.minute < 60
            && t.second < 61,
        "implausible time {:?}",
        t
    );
    Ok(())
}

fn list_variables() -> TestResult {
    let rt = runtime()?;
    let mut boot_order = false;
    let n = rt
        .for_each_variable(|name, vendor| {
            log::debug!("efi:   variable {name} {vendor}");
            let mut s = crate::fixed::FixedStr::<128>::new();
            let _ = core::fmt::write(&mut s, format_args!("{name}"));
            boot_order |= s.as_str() == "BootOrder"
                && *vendor == uefi_raw::table::runtime::VariableVendor::GLOBAL_VARIABLE.0;
        })
        .map_err(|e| fail!("GetNextVariableName: {e}"))?;
    log::debug!("efi: {n} variables, BootOrder among them: {boot_order}");
    check!(
        n > 0 && boot_order,
        "{n} variables, BootOrder found: {boot_order}"
    );
    Ok(())
}

fn set_get_variable() -> TestResult {
    let rt = runtime()?;
    let name = Name::new("BatonSelfTest").expect("short ASCII name");
    let value = crate::time::tsc().to_le_bytes();
    // After ExitBootServices only non-volatile variables can be written.
    let attrs = VariableAttributes::NON_VOLATILE
        | VariableAttributes::BOOTSERVICE_ACCESS
        | VariableAttributes::RUNTIME_ACCESS;
    rt.set_variable(&name, &BATON_GUID, attrs, &value)
        .map_err(|e| fail!("SetVariable: {e}"))?;
    let mut buf = [0u8; 64];
    let (got_attrs, len) = rt
        .get_variable(&name, &BATON_GUID, &mut buf)
        .map_err(|e| fail!("GetVariable: {e}"))?;
    check!(
        buf[..len] == value,
        "read {:?}, wrote {value:?}",
        &buf[..len]
    );
    check!(
        got_attrs == attrs,
        "attributes {got_attrs:?}, wrote {attrs:?}"
    );
    // A buffer too small says how much is needed.
    let short = rt.get_variable(&name, &BATON_GUID, &mut buf[..3]);
    check!(
        short
            == Err(super::runtime::VariableError::TooSmall {
                needed: value.len()
            }),
        "GetVariable into 3 bytes: {short:?}"
    );
    // Delete it again.
    rt.set_variable(&name, &BATON_GUID, attrs, &[])
        .map_err(|e| fail!("deleting: {e}"))?;
    let gone = rt.get_variable(&name, &BATON_GUID, &mut buf);
    check!(
        gone.is_err_and(|e| e.is_not_found()),
        "after deletion: {gone:?}"
    );
    Ok(())
}

fn boot_counter() -> TestResult {
    let rt = runtime()?;
    let name = Name::new("BatonBootCount").expect("short ASCII name");
    let attrs = VariableAttributes::NON_VOLATILE
        | VariableAttributes::BOOTSERVICE_ACCESS
        | VariableAttributes::RUNTIME_ACCESS;
    let mut buf = [0u8; 8];
    let was = match rt.get_variable(&name, &BATON_GUID, &mut buf) {
        Ok((_, 8)) => u64::from_le_bytes(buf),
        Ok((_, len)) => return Err(fail!("BatonBootCount has {len} bytes")),
        Err(e) if e.is_not_found() => 0,
        Err(e) => return Err(fail!("GetVariable: {e}")),
    };
    let now = was + 1;
    rt.set_variable(&name, &BATON_GUID, attrs, &now.to_le_bytes())
        .map_err(|e| fail!("SetVariable: {e}"))?;
    let (_, len) = rt
        .get_variable(&name, &BATON_GUID, &mut buf)
        .map_err(|e| fail!("GetVariable: {e}"))?;
    check!(
        len == 8 && u64::from_le_bytes(buf) == now,
        "read back {buf:?}"
    );
    log::debug!("efi: BatonBootCount was {was}, now {now}");
    Ok(())
}

/// SetVirtualAddressMap ran with the EFI map's boot-services memory mapped
/// one-to-one, whatever Limine called it.
fn boot_services_during_svam() -> TestResult {
    let Some(mapped) = super::svam_boot_services_bytes() else {
        check!(
            services().is_none(),
            "runtime services without a record of SetVirtualAddressMap's mappings"
        );
        crate::skip!("SetVirtualAddressMap never ran on this boot");
    };
    let claims = crate::shim::handover::boot_services_claims()
        .ok_or_else(|| fail!("SetVirtualAddressMap ran without an EFI map at entry"))?;
    check!(
        mapped == claims.total,
        "{mapped:#x} bytes mapped one-to-one, the EFI map has {:#x} of boot-services memory",
        claims.total
    );
    Ok(())
}
