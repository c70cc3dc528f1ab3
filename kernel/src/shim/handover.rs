//! What Limine handed over under the base revision in effect, as baton saw
//! it on Limine's page tables, and self-tests that baton's decisions follow
//! from it.
//!
//! The releases differ (`handoff::revision`): what the HHDM maps (revision
//! 2 the first 4 GiB and more, 3 only usable, reclaimable, executable and
//! framebuffer memory, 4 adds ACPI, 5 the EFI runtime regions, which
//! Limine's map then calls reserved-mapped), whether the EFI system table
//! pointer is physical (3 and 4) or an HHDM address, and, from Limine 9.3
//! on, that the firmware's boot-services memory is bootloader-reclaimable.
//! [`observe`] records and logs all of it before the switch; the tests
//! hold baton's decisions to it.

use handoff::memmap::boot_services::{self, Claims};
use handoff::memmap::{Allocatable, EfiMemoryMap, Kind, limine};
use handoff::paging::Walker;
use handoff::phys::PhysWindow;
use handoff::revision::{self, BootPointer};
use log::{debug, warn};
use x86_64::PhysAddr;

use crate::boot::{self, BootInfo};
use crate::kspace;

/// Limine's memory-map types baton names (0 to 8), and one for newer ones.
const TYPES: usize = 10;

fn type_name(ty: usize) -> &'static str {
    [
        "usable",
        "reserved",
        "ACPI",
        "ACPI NVS",
        "bad",
        "bootloader-reclaimable",
        "executable",
        "framebuffer",
        "reserved-mapped",
        "other",
    ][ty.min(TYPES - 1)]
}

/// Entries of one kind, and how many of them Limine's HHDM maps.
#[derive(Debug, Clone, Copy, Default)]
struct Coverage {
    entries: u32,
    mapped: u32,
}

/// The first entry the revision promises in the HHDM that is not there.
#[derive(Debug, Clone, Copy)]
struct Unmapped {
    ty: u64,
    start: u64,
    end: u64,
}

/// What baton saw of the handover.
#[derive(Debug, Clone, Copy)]
struct Seen {
    revision: u64,
    hhdm_offset: u64,
    /// Limine's entries per type.
    types: [Coverage; TYPES],
    /// The first promise broken for memory baton reads or writes through
    /// the HHDM before the switch ([`relied_on`]).
    broken_promise: Option<Unmapped>,
    /// The first promise broken for memory baton does not touch there:
    /// usable memory above the early frames' limit (Limine 9.6.7 under its
    /// KASLR sometimes leaves a usable entry above 4 GiB out).
    left_out: Option<Unmapped>,
    /// Usable entries that start below the early frames' limit: the new
    /// tables are built in them.
    usable_low: Coverage,
    /// Whether that was the framebuffer, which baton does not rely on the
    /// promise for (the screen console checks before it draws); Limine
    /// 9.6.7 under its KASLR sometimes leaves it out.
    framebuffer_left_out: bool,
    /// The EFI descriptors with the runtime attribute.
    runtime: Coverage,
    /// The EFI system table response's pointer, as Limine gave it.
    system_table: Option<u64>,
    /// The EFI map's boot-services memory and what Limine calls it.
    boot_services: Option<Claims>,
}

static SEEN: spin::Once<Seen> = spin::Once::new();

/// Whether Limine's HHDM maps `start..end` at `hhdm + start` (its first
/// and its last byte).
fn mapped<W: handoff::phys::PhysWindow>(
    walker: &Walker<'_, W>,
    hhdm: u64,
    start: u64,
    end: u64,
) -> bool {
    [start, end - 1].iter().all(|&a| {
        walker
            .translate(hhdm + a)
            .is_some_and(|t| t.phys == PhysAddr::new(a))
    })
}

/// Records what Limine handed over and logs it, from Limine's tables
/// walked through its HHDM (`walker`), before the handoff.
pub fn observe<W: PhysWindow>(boot: &BootInfo, walker: &Walker<'_, W>) {
    let revision = boot.revision.revision;
    let mut seen = Seen {
        revision,
        hhdm_offset: boot.hhdm_offset,
        types: [Coverage::default(); TYPES],
        broken_promise: None,
        left_out: None,
        usable_low: Coverage::default(),
        framebuffer_left_out: false,
        runtime: Coverage::default(),
        system_table: boot::efi_system_table_pointer(),
        boot_services: None,
    };
    let raw = boot::RAW_MAPS.lock();
    for e in raw.limine().iter().filter(|e| e.length != 0) {
        let end = e.base.saturating_add(e.length);
        let is_mapped = mapped(walker, boot.hhdm_offset, e.base, end);
        let c = &mut seen.types[(e.ty as usize).min(TYPES - 1)];
        c.entries += 1;
        c.mapped += u32::from(is_mapped);
        if e.ty == limine::USABLE && relied_on(e.ty, e.base) {
            seen.usable_low.entries += 1;
            seen.usable_low.mapped += u32::from(is_mapped);
        }
        if !is_mapped && revision::hhdm_promises(revision, e.ty, e.base, end) {
            note_broken_promise(&mut seen, e.ty, e.base, end);
        }
    }
    if let Some((bytes, meta)) = raw.efi() {
        let bits = crate::cpu::features::detect().max_phys_bits;
        if let Ok(efi) = EfiMemoryMap::parse(bytes, meta.desc_size, meta.desc_version, bits) {
            for d in efi.iter().filter(|d| d.is_runtime()) {
                seen.runtime.entries += 1;
                seen.runtime.mapped +=
                    u32::from(mapped(walker, boot.hhdm_offset, d.start(), d.end()));
            }
            seen.boot_services = Some(boot_services::claims(&efi, raw.limine()));
        }
    }
    drop(raw);
    report(SEEN.call_once(|| seen));
}

/// Whether baton reads or writes memory of Limine's type `ty` at `start`
/// through the HHDM before the switch: Limine's responses and tables
/// (bootloader-reclaimable), the kernel (executable), and the usable
/// memory the new tables are built in, below the early frames' limit.
fn relied_on(ty: u64, start: u64) -> bool {
    match ty {
        limine::USABLE => start < crate::shim::EARLY_FRAMES_BELOW,
        limine::BOOTLOADER_RECLAIMABLE | limine::EXECUTABLE_AND_MODULES => true,
        _ => false,
    }
}

/// Files a promise Limine broke: the framebuffer's (the screen console
/// checks before it draws), one baton relies on, or one it does not.
fn note_broken_promise(seen: &mut Seen, ty: u64, start: u64, end: u64) {
    let unmapped = Unmapped { ty, start, end };
    if ty == limine::FRAMEBUFFER {
        seen.framebuffer_left_out = true;
    } else if relied_on(ty, start) {
        seen.broken_promise.get_or_insert(unmapped);
    } else {
        seen.left_out.get_or_insert(unmapped);
    }
}

/// `mapped/entries` for the types in `types` that Limine's map has.
fn coverage(seen: &Seen, types: core::ops::Range<usize>) -> crate::fixed::FixedStr<256> {
    let mut line = crate::fixed::FixedStr::<256>::new();
    for ty in types.filter(|&ty| seen.types[ty].entries > 0) {
        let (c, sep) = (
            seen.types[ty],
            if line.as_str().is_empty() { "" } else { ", " },
        );
        let _ = core::fmt::write(
            &mut line,
            format_args!("{sep}{} {}/{}", type_name(ty), c.mapped, c.entries),
        );
    }
    line
}

fn report(seen: &Seen) {
    // Two lines: firmware's kinds of memory, then Limine's own.
    let (firmware, limine) = (coverage(seen, 0..5), coverage(seen, 5..TYPES));
    debug!("limine: HHDM maps these Limine entries: {firmware}");
    debug!("limine:   and of Limine's own kinds: {limine}");
    debug!(
        "limine: base revision {} promises {} in the HHDM",
        seen.revision,
        Promise(seen.revision)
    );
    if seen.runtime.entries > 0 {
        let reserved_mapped = seen.types[limine::RESERVED_MAPPED as usize].entries;
        debug!(
            "limine: EFI runtime regions in Limine's HHDM: {} of {} descriptors; {} \
             reserved-mapped entries in Limine's map",
            seen.runtime.mapped, seen.runtime.entries, reserved_mapped
        );
    }
    if let Some(ptr) = seen.system_table {
        let physical = revision::is_physical_form(ptr, seen.hhdm_offset);
        debug!(
            "limine: EFI system table pointer {ptr:#x} is {}; base revision {} gives it {}",
            if physical {
                "physical"
            } else {
                "an HHDM address"
            },
            seen.revision,
            if BootPointer::EfiSystemTable.is_physical(seen.revision) {
                "physical"
            } else {
                "as an HHDM address"
            }
        );
    }
    if let Some(c) = seen.boot_services {
        debug!(
            "limine: EFI boot-services memory {} KiB: Limine calls {} KiB of it \
             bootloader-reclaimable, {} KiB usable",
            c.total >> 10,
            c.reclaimable >> 10,
            c.usable >> 10
        );
    }
    if seen.framebuffer_left_out {
        warn!(
            "limine: base revision {} promises the framebuffer in the HHDM, but it is not \
             mapped there",
            seen.revision
        );
    }
    for u in [seen.broken_promise, seen.left_out].into_iter().flatten() {
        warn!(
            "limine: base revision {} promises {} entry {:#x}-{:#x} in the HHDM, but it is not \
             mapped there",
            seen.revision,
            type_name(u.ty as usize),
            u.start,
            u.end
        );
    }
    if seen.broken_promise.is_none() && seen.left_out.is_some() {
        warn!("limine:   baton does not touch that memory before the switch; its tables map it");
    }
}

/// What a revision promises in the HHDM, for the log.
struct Promise(u64);

impl core::fmt::Display for Promise {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 <= 2 {
            return f.write_str("the first 4 GiB, and above them all but reserved and bad memory");
        }
        for (i, &ty) in revision::hhdm_types(self.0).iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}", type_name(ty as usize))?;
        }
        f.write_str(" only")
    }
}

mod tests;
pub use tests::TESTS;

/// The firmware's boot-services memory and what Limine called it, as seen
/// at entry (UEFI boots).
pub fn boot_services_claims() -> Option<Claims> {
    SEEN.get().and_then(|seen| seen.boot_services)
}
