//! SetVirtualAddressMap, called exactly once, from a temporary address
//! space: the kernel's upper half plus one-to-one mappings of the runtime
//! regions (the firmware runs at its physical addresses until the call
//! converts it), of the rewritten map, of page 0 and of the boot-services
//! regions, as Linux maps them for firmware that still touches them. Its
//! own tables go back to the frame allocator once it runs.

use core::cell::UnsafeCell;

use handoff::cmdline::Inject;
use handoff::efi::services::Service;
use handoff::efi::{self, RuntimeRegions};
use handoff::memmap::{EfiMemoryMap, boot_services};
use log::{debug, info, warn};
use uefi_raw::table::boot::MemoryDescriptor;
use uefi_raw::table::runtime::RuntimeServices;
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

use super::{EfiStatus, Unavailable, call};
use crate::boot::EfiMapInfo;
use crate::kspace::{AddressSpace, KernelSpace};

/// The copy of the runtime descriptors for SetVirtualAddressMap, in the
/// kernel image so that its physical address is known and stable.
#[repr(C, align(4096))]
struct MapCopy(UnsafeCell<[u8; 128 * 1024]>);
// SAFETY: written once, by `rewrite` under the lock of `REWRITTEN`, before
// the only call that reads it.
unsafe impl Sync for MapCopy {}
static MAP_COPY: MapCopy = MapCopy(UnsafeCell::new([0; 128 * 1024]));
/// Taken while the copy is written: once.
static REWRITTEN: spin::Once<()> = spin::Once::new();

/// The most page tables of the temporary address space that are recorded
/// to be given back.
pub const MAX_TEMP_TABLES: usize = 128;

/// The temporary address space's own tables (its root and everything under
/// its lower half), from the early frames: given back to the frame
/// allocator once it runs ([`release_temporary_tables`]).
static TEMP_TABLES: spin::Mutex<([Option<PhysFrame>; MAX_TEMP_TABLES], usize)> =
    spin::Mutex::new(([None; MAX_TEMP_TABLES], 0));

/// The map SetVirtualAddressMap takes, written into [`MAP_COPY`]: its
/// physical address and length.
fn rewrite(
    kernel: &KernelSpace,
    efi_map: &EfiMemoryMap<'_>,
    runtime: &RuntimeRegions,
) -> Result<(u64, usize), Unavailable> {
    let mut len = Err(Unavailable::Firmware(
        "SetVirtualAddressMap's map written twice",
    ));
    REWRITTEN.call_once(|| {
        // SAFETY: `REWRITTEN` runs this once; nothing else touches the
        // buffer before the call reads it.
        let copy = unsafe { &mut *MAP_COPY.0.get() };
        len = efi::rewrite_map(efi_map, runtime, copy).map_err(Unavailable::from);
    });
    let image = kernel.kernel();
    let phys = image.phys_base.as_u64() + (MAP_COPY.0.get() as u64 - image.virt_base);
    Ok((phys, len?))
}

/// The temporary address space: the EFI address space's upper half (the
/// kernel's, and the window) plus 1:1 mappings of the runtime regions and
/// of `extra` ranges.
fn temporary_space(
    kernel: &KernelSpace,
    efi_space: &AddressSpace,
    runtime: &RuntimeRegions,
    extra: &[(u64, u64)],
) -> Result<AddressSpace, Unavailable> {
    let mut early = kernel.early_frames();
    let frames = early.as_mut().ok_or(Unavailable::NoFrames)?;
    let temp = efi_space
        .sharing_upper_half(frames)
        .map_err(|_| Unavailable::NoFrames)?;
    let lower_end = kernel.layout().lower_half_end();
    let (pat, nx) = (kernel.pat(), kernel.cpu().nx);
    for m in efi::identity_mappings(runtime, extra, pat, nx) {
        if m.virt + m.len > lower_end {
            return Err(Unavailable::NotIdentityMappable(m.virt));
        }
        temp.map(frames, [m])?;
    }
    drop(early);
    record_tables(&temp);
    Ok(temp)
}

/// The bytes of boot-services memory the temporary address space maps
/// one-to-one for SetVirtualAddressMap, once it is built.
static SVAM_BOOT_SERVICES: spin::Once<u64> = spin::Once::new();

/// How much boot-services memory SetVirtualAddressMap's address space
/// mapped one-to-one; `None` before it was built (or on BIOS boots).
pub fn svam_boot_services_bytes() -> Option<u64> {
    SVAM_BOOT_SERVICES.get().copied()
}

/// What the temporary space maps 1:1 besides the runtime regions: the
/// rewritten map, page 0 (some firmware writes it during the call) and,
/// as Linux does for firmware that still touches them, the boot-services
/// regions (not freed yet), as the EFI map gives them: Limine 9.3 and
/// later call them bootloader-reclaimable, but they are the firmware's
/// all the same. Returns how many of `out` it filled.
fn extra_ranges(
    efi_map: &EfiMemoryMap<'_>,
    runtime: &RuntimeRegions,
    map_copy: (u64, usize),
    out: &mut [(u64, u64); 64],
) -> usize {
    let mut boot_services = [(0u64, 0u64); 62];
    let boot_services = match boot_services::ranges(efi_map, &mut boot_services) {
        Ok(count) => &boot_services[..count],
        Err(_) => {
            warn!("efi: more boot-services ranges than the temporary tables take; none mapped");
            &boot_services[..0]
        }
    };
    let covered = |a: u64| {
        runtime.region_of(a).is_some() || boot_services.iter().any(|&(s, e)| s <= a && a < e)
    };
    let mut n = 0;
    out[n] = (map_copy.0, map_copy.1 as u64);
    n += 1;
    if !covered(0) {
        out[n] = (0, 4096);
        n += 1;
    }
    let mut bytes = 0;
    for &(start, end) in boot_services {
        out[n] = (start, end - start);
        n += 1;
        bytes += end - start;
    }
    SVAM_BOOT_SERVICES.call_once(|| bytes);
    n
}

/// Records the temporary space's own tables (root and lower half) to be
/// given back once the frame allocator runs.
fn record_tables(temp: &AddressSpace) {
    let mut tables = TEMP_TABLES.lock();
    tables.1 = 0;
    let all = temp.own_tables(|frame| {
        let n = tables.1;
        if n == MAX_TEMP_TABLES {
            return false;
        }
        tables.0[n] = Some(frame);
        tables.1 += 1;
        true
    });
    if !all {
        warn!("efi: more temporary page tables than recorded; they stay reserved");
        tables.1 = 0;
    }
}

/// Gives the temporary address space's page tables to the frame
/// allocator, which holds them back as early page tables until now.
pub fn release_temporary_tables() {
    let mut tables = TEMP_TABLES.lock();
    let n = tables.1;
    if n == 0 {
        return;
    }
    tables.1 = 0;
    let mut frames = [PhysFrame::containing_address(PhysAddr::zero()); MAX_TEMP_TABLES];
    for (out, frame) in frames.iter_mut().zip(tables.0[..n].iter().flatten()) {
        *out = *frame;
    }
    match crate::mm::frames::give_back_tables(&frames[..n]) {
        Ok(_) => debug!(
            "efi: the temporary address space's {n} page-table frames given back to the allocator"
        ),
        Err((i, e)) => warn!(
            "efi: temporary page table {:#x} not given back ({e}); {i} of {n} were",
            frames[i].start_address().as_u64()
        ),
    }
}

/// Builds the temporary space and calls SetVirtualAddressMap from it with
/// the rewritten map; CR3 returns to the kernel's tables right after.
pub fn call(
    kernel: &KernelSpace,
    efi_space: &AddressSpace,
    efi_map: &EfiMemoryMap<'_>,
    meta: EfiMapInfo,
    runtime: &RuntimeRegions,
    rt: &RuntimeServices,
) -> Result<(), Unavailable> {
    let map_copy = rewrite(kernel, efi_map, runtime)?;
    let mut extra = [(0u64, 0u64); 64];
    let n = extra_ranges(efi_map, runtime, map_copy, &mut extra);
    let temp = temporary_space(kernel, efi_space, runtime, &extra[..n])?;
    let (map_phys, map_len) = map_copy;
    let version = if crate::testing::is_injected(Inject::SvamVersion) {
        let bad = meta.desc_version + 0x100;
        warn!("inject: SetVirtualAddressMap gets descriptor version {bad}");
        bad
    } else {
        meta.desc_version
    };
    // SAFETY: SetVirtualAddressMap with the rewritten map, at its physical
    // address, mapped 1:1 in the temporary space, with its stride and
    // length.
    let status = call::call(Service::SetVirtualAddressMap, &temp, || unsafe {
        (rt.set_virtual_address_map)(
            map_len,
            meta.desc_size,
            version,
            map_phys as *mut MemoryDescriptor,
        )
    });
    if !status.is_success() {
        return Err(Unavailable::SetVirtualAddressMap(EfiStatus(status)));
    }
    info!(
        "efi: SetVirtualAddressMap({} descriptors) from a temporary address space \
         (root {:#x}, no longer used): success",
        map_len / meta.desc_size,
        temp.root().start_address().as_u64()
    );
    Ok(())
}
