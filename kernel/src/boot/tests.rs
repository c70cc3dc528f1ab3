//! Self-tests of the handover copy and of the image layout Limine relies on.

use super::{
    BASE_REVISION, EFI_MEMMAP, MEMMAP, PAGING_MODE, RAW_MAPS, REQUESTS_END, REQUESTS_START, info,
};
use handoff::layout::{KASLR_IMAGE_END, KERNEL_IMAGE_START};

use crate::selftest::{Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[
    Test {
        name: "boot: Limine requests sit between the start and end markers",
        run: requests_between_markers,
    },
    Test {
        name: "boot: kernel runs where Limine says, a page-aligned slide into the top 2 GiB",
        run: kernel_where_limine_says,
    },
    Test {
        name: "boot: memory maps copied out of bootloader memory",
        run: maps_copied,
    },
];

fn requests_between_markers() -> TestResult {
    let start = &REQUESTS_START as *const _ as u64;
    let end = &REQUESTS_END as *const _ as u64;
    for (name, addr) in [
        ("base revision", &BASE_REVISION as *const _ as u64),
        ("memory map", &MEMMAP as *const _ as u64),
        ("EFI memory map", &EFI_MEMMAP as *const _ as u64),
        ("paging mode", &PAGING_MODE as *const _ as u64),
    ] {
        check!(
            start < addr && addr < end,
            "{name} request at {addr:#x} is outside {start:#x}..{end:#x}"
        );
    }
    Ok(())
}

fn kernel_where_limine_says() -> TestResult {
    unsafe extern "C" {
        static __kernel_start: u8;
    }
    // SAFETY: only the address of the linker symbol is taken (RIP-relative:
    // where the image runs, wherever Limine loaded it).
    let running = unsafe { &__kernel_start as *const u8 as u64 };
    let boot = info();
    check!(
        boot.kernel_virt == running,
        "Limine reports virtual base {:#x}, the image runs at {running:#x}",
        boot.kernel_virt
    );
    // Limine keeps a relocated image in the top 2 GiB, as the kernel code
    // model needs, and moves it by whole pages.
    check!(
        (KERNEL_IMAGE_START..KASLR_IMAGE_END).contains(&running)
            && (running - KERNEL_IMAGE_START).is_multiple_of(4096),
        "the image runs at {running:#x}: not a page-aligned slide from its link address {KERNEL_IMAGE_START:#x}"
    );
    check!(
        boot.kernel_phys.is_multiple_of(4096),
        "physical base {:#x} not page-aligned",
        boot.kernel_phys
    );
    Ok(())
}

fn maps_copied() -> TestResult {
    let raw = RAW_MAPS.lock();
    check!(!raw.limine().is_empty(), "no Limine memory-map entries");
    check!(
        raw.limine()
            .iter()
            .any(|e| e.ty == handoff::memmap::limine::EXECUTABLE_AND_MODULES),
        "no executable-and-modules entry (the kernel) in Limine's map"
    );
    if info().firmware.is_uefi() {
        let Some((bytes, meta)) = raw.efi() else {
            return Err(fail!("UEFI boot without an EFI memory map copy"));
        };
        check!(
            meta.desc_size >= 40 && bytes.len().is_multiple_of(meta.desc_size),
            "EFI map of {} bytes with desc_size {}",
            bytes.len(),
            meta.desc_size
        );
    }
    Ok(())
}
