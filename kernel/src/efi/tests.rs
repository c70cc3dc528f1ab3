//! Self-tests of the UEFI runtime services through baton's tables.

use uefi_raw::table::runtime::VariableAttributes;
use uefi_raw::{Guid, guid};

use handoff::cmdline::Inject;

use super::{Name, services, window};
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
        name: "efi: the temporary address space's page tables are back with the allocator",
        run: temporary_tables_released,
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
            "runtime services unavailable on this boot (see the efi: lines)"
        )))
    }
}

fn available_on_uefi() -> TestResult {
    let uefi = boot::info().firmware == boot::Firmware::Uefi64;
    let injected = testing::is_injected(Inject::SvamVersion);
    check!(
        services().is_some() == (uefi && !injected),
        "firmware {:?}, SetVirtualAddressMap failure injected: {injected}, runtime services \
         available: {}",
        boot::info().firmware,
        services().is_some()
    );
    if services().is_none() {
        // Whatever was placed in the window is mapped no more.
        for r in window::RUNTIME.lock().regions() {
            check!(
                window::window_phys(kspace::get(), r.virt).is_none(),
                "window address {:#x} still mapped without runtime services",
                r.virt
            );
        }
    }
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
    let window = layout.efi_window_start()..layout.efi_window_end();
    let table = rt.table_address();
    check!(
        window.contains(&table),
        "runtime services table at {table:#x}"
    );
    let get_time = rt.get_time_address();
    check!(window.contains(&get_time), "GetTime at {get_time:#x}");
    check!(
        window::window_phys(kspace::get(), get_time).is_some(),
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
    log::info!("efi: {n} variables, BootOrder among them: {boot_order}");
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
    log::info!("efi: BatonBootCount was {was}, now {now}");
    Ok(())
}
