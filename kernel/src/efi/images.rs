//! The runtime drivers' PE/COFF images, found in runtime-code memory
//! (read through the physmap: it is RAM): their section headers say which
//! pages are code and which data, for firmware without a memory attributes
//! table, and as a check of the table where there is one.

use handoff::efi::RuntimeRegions;
use handoff::efi::pe::Images;
use log::{debug, warn};
use uefi_raw::table::boot::MemoryType;

use crate::kspace::KernelSpace;

/// The images found, once scanned.
static IMAGES: spin::Mutex<Images> = spin::Mutex::new(Images::new());

/// Scans every runtime-code region for images and logs what it found.
/// Returns the images, or `None` when no region holds a parsable one.
pub fn scan(
    kernel: &KernelSpace,
    runtime: &RuntimeRegions,
) -> Option<spin::MutexGuard<'static, Images>> {
    let mut images = IMAGES.lock();
    let mut found = 0;
    for r in runtime
        .regions()
        .iter()
        .filter(|r| r.ty == MemoryType::RUNTIME_SERVICES_CODE)
    {
        let scan = images.scan(r.phys, r.len, |phys, page| kernel.read_phys(phys, page));
        found += scan.images;
        let end = r.phys + r.len;
        match (scan.images, scan.first_error) {
            (0, Some((at, e))) => warn!(
                "efi: runtime code {:#x}-{end:#x}: no parsable image ({e} at {at:#x}); \
                 mapped read + execute as a whole",
                r.phys
            ),
            (0, None) => warn!(
                "efi: runtime code {:#x}-{end:#x}: no PE/COFF image; mapped read + execute \
                 as a whole",
                r.phys
            ),
            (n, _) => debug!(
                "efi: runtime code {:#x}-{end:#x}: {n} PE/COFF images, {} pages in none",
                r.phys, scan.uncovered_pages
            ),
        }
        if scan.dropped > 0 {
            warn!(
                "efi: {} more images than baton keeps; their regions stay read + execute",
                scan.dropped
            );
        }
    }
    (found > 0).then_some(images)
}
