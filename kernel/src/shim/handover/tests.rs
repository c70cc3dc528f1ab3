//! Self-tests that baton's decisions follow from what Limine handed over.

use super::*;
use crate::selftest::{Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[
    Test {
        name: "boot: Limine's HHDM mapped every entry the base revision promises that baton relies on",
        run: hhdm_as_promised,
    },
    Test {
        name: "boot: the system table pointer (UEFI) had the form the base revision gives it",
        run: system_table_pointer,
    },
    Test {
        name: "handoff: EFI runtime regions are baton's to map, whatever Limine's map calls them",
        run: runtime_regions,
    },
    Test {
        name: "handoff: boot-services memory is freed when what Limine calls it allows",
        run: boot_services_release,
    },
];

fn seen() -> Result<&'static Seen, crate::selftest::NotPassed> {
    SEEN.get()
        .ok_or_else(|| fail!("the handover was never observed"))
}

/// baton reads Limine's responses, memory maps and page tables and writes
/// its own tables through the HHDM before the switch: all of them lie in
/// memory every revision promises there, which must hold. The framebuffer
/// it draws on only where the HHDM maps it, promised or not.
fn hhdm_as_promised() -> TestResult {
    let seen = seen()?;
    check!(
        !(seen.framebuffer_left_out && crate::console::fb::draws_before_switch()),
        "the screen console drew through an HHDM that leaves the framebuffer out"
    );
    if let Some(u) = seen.broken_promise {
        return Err(fail!(
            "{} entry {:#x}-{:#x} is not in the HHDM",
            type_name(u.ty as usize),
            u.start,
            u.end
        ));
    }
    let relied = [
        ("usable below 4 GiB", seen.usable_low),
        (
            "bootloader-reclaimable",
            seen.types[limine::BOOTLOADER_RECLAIMABLE as usize],
        ),
        (
            "executable",
            seen.types[limine::EXECUTABLE_AND_MODULES as usize],
        ),
    ];
    for (name, c) in relied {
        check!(
            c.entries > 0 && c.mapped == c.entries,
            "{name}: {} of {} entries mapped",
            c.mapped,
            c.entries
        );
    }
    Ok(())
}

/// The system table pointer was physical exactly where the revision says,
/// so the address baton derived from it is the table's.
fn system_table_pointer() -> TestResult {
    let seen = seen()?;
    let uefi = boot::info().firmware.is_uefi();
    let Some(ptr) = seen.system_table else {
        check!(!uefi, "a UEFI boot without an EFI system table response");
        return Ok(());
    };
    let physical = revision::is_physical_form(ptr, seen.hhdm_offset);
    check!(
        physical == BootPointer::EfiSystemTable.is_physical(seen.revision),
        "pointer {ptr:#x} is {} but base revision {} says otherwise",
        if physical { "physical" } else { "in the HHDM" },
        seen.revision
    );
    let derived = boot::info().efi_system_table;
    let expected = if physical {
        ptr
    } else {
        ptr - seen.hhdm_offset
    };
    check!(
        derived == Some(expected),
        "baton took the table to be at {derived:x?}, the pointer says {expected:#x}"
    );
    Ok(())
}

/// Every EFI runtime descriptor keeps the kind its EFI type gives it in
/// baton's normalised map (runtime code or data, readable through the
/// physmap, headed for the EFI window, never given to the allocator), even
/// where Limine maps it itself and calls it reserved-mapped (revision 5).
fn runtime_regions() -> TestResult {
    let raw = boot::RAW_MAPS.lock();
    let Some((bytes, meta)) = raw.efi() else {
        crate::skip!("no EFI memory map: no runtime regions");
    };
    let bits = crate::cpu::features::detect().max_phys_bits;
    let efi = EfiMemoryMap::parse(bytes, meta.desc_size, meta.desc_version, bits)
        .map_err(|e| fail!("{e}"))?;
    let map = kspace::get().memory_map();
    let mut n = 0;
    for d in efi.iter().filter(|d| d.is_runtime()) {
        n += 1;
        for r in map
            .regions()
            .iter()
            .filter(|r| r.start < d.end() && d.start() < r.end)
        {
            check!(
                r.kind == d.kind()
                    && r.is_efi_runtime()
                    && r.policy().allocatable == Allocatable::Never,
                "runtime descriptor {:#x}-{:#x} ({:?}) lies in a {:?} region {:#x}-{:#x}",
                d.start(),
                d.end(),
                d.kind(),
                r.kind,
                r.start,
                r.end
            );
        }
    }
    check!(
        n == seen()?.runtime.entries,
        "{n} runtime descriptors now, {} at entry",
        seen()?.runtime.entries
    );
    Ok(())
}

/// The normalised map follows Limine's claim on the firmware's
/// boot-services memory: what Limine calls reclaimable is bootloader
/// memory (freed after every CPU has left Limine's code), the rest boot
/// services (freed after SetVirtualAddressMap).
fn boot_services_release() -> TestResult {
    let Some(claims) = seen()?.boot_services else {
        crate::skip!("no EFI memory map: no boot-services memory");
    };
    let raw = boot::RAW_MAPS.lock();
    let (bytes, meta) = raw.efi().ok_or_else(|| fail!("EFI map gone"))?;
    let bits = crate::cpu::features::detect().max_phys_bits;
    let efi = EfiMemoryMap::parse(bytes, meta.desc_size, meta.desc_version, bits)
        .map_err(|e| fail!("{e}"))?;
    let mut ranges = [(0, 0); 256];
    let n = boot_services::ranges(&efi, &mut ranges)
        .map_err(|_| fail!("more than 256 boot-services ranges"))?;
    let map = kspace::get().memory_map();
    let (mut as_bootloader, mut as_boot_services) = (0, 0);
    for &(start, end) in &ranges[..n] {
        for r in map.regions() {
            let bytes = r.end.min(end).saturating_sub(r.start.max(start));
            match r.kind {
                Kind::BootloaderReclaimable => as_bootloader += bytes,
                Kind::BootServices => as_boot_services += bytes,
                _ => {}
            }
        }
    }
    check!(
        as_bootloader == claims.reclaimable,
        "{as_bootloader:#x} bytes of boot-services memory are bootloader-reclaimable in baton's \
         map, Limine claimed {:#x}",
        claims.reclaimable
    );
    check!(
        as_boot_services == claims.total - claims.reclaimable,
        "{as_boot_services:#x} bytes are boot services in baton's map, {:#x} expected",
        claims.total - claims.reclaimable
    );
    Ok(())
}
