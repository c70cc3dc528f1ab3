//! Limine base revisions: which one is in effect, and what it changes.
//!
//! baton asks for [`REQUESTED`] and works under every revision from
//! [`OLDEST_SUPPORTED`] up. The bootloader answers in the base revision tag
//! (three words: two magic numbers and the requested revision):
//!
//! * third word zeroed: the request was honoured, [`REQUESTED`] is in effect;
//! * otherwise the bootloader boots with a revision of its choosing. Limine
//!   8.3.2 and later write it into the second word; older Limine leaves the
//!   tag alone and uses the newest revision it knows, which follows from its
//!   version (8.0 to 8.2: revision 2; 8.3.0 and 8.3.1: revision 3).
//!
//! What the revisions change for baton (x86-64):
//!
//! | revision | HHDM covers | EFI system table | RSDP | SMBIOS |
//! |---|---|---|---|---|
//! | 2 | first 4 GiB + all but reserved/bad above | HHDM | HHDM | HHDM |
//! | 3 | usable, reclaimable, executable, framebuffer | physical | physical | physical |
//! | 4 | revision 3 + ACPI | physical | HHDM | physical |
//! | 5 | revision 4 + EFI runtime, system table | HHDM | HHDM | HHDM |
//!
//! The EFI memory map pointer is an HHDM address in every revision.

use core::fmt;

/// The base revision baton requests: the newest it understands.
pub const REQUESTED: u64 = 5;

/// The oldest base revision baton can run under (Limine 8.0).
pub const OLDEST_SUPPORTED: u64 = 2;

/// The second word of the tag until a bootloader writes the revision there.
pub const LOADED_MAGIC: u64 = 0x6a7b_3849_4453_6bdc;

/// The base revision tag after the bootloader has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Second word: [`LOADED_MAGIC`], or the revision in effect (Limine 8.3.2+).
    pub loaded: u64,
    /// Third word: zero when the requested revision was honoured.
    pub revision: u64,
}

/// How baton learnt the revision in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The bootloader zeroed the tag's third word: the request was honoured.
    Honoured,
    /// The bootloader wrote the revision into the tag's second word.
    Reported,
    /// An older Limine that does not report: its newest revision, by version.
    InferredFromVersion,
}

/// The base revision in effect and how it was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InEffect {
    /// The revision.
    pub revision: u64,
    /// Where it came from.
    pub basis: Basis,
}

impl fmt::Display for InEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.basis {
            Basis::Honoured => "honoured",
            Basis::Reported => "reported by the bootloader",
            Basis::InferredFromVersion => "inferred from the bootloader version",
        };
        write!(f, "{} ({how})", self.revision)
    }
}

/// Why the base revision is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionError {
    /// The revision in effect is outside what baton supports.
    Unsupported(InEffect),
    /// The bootloader neither honoured the request nor said what it did.
    Unknown,
}

impl fmt::Display for RevisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevisionError::Unsupported(e) => write!(
                f,
                "base revision {e} is in effect; baton needs {OLDEST_SUPPORTED} to {REQUESTED}"
            ),
            RevisionError::Unknown => write!(
                f,
                "requested base revision {REQUESTED} was not honoured and the bootloader \
                 did not say which revision it used"
            ),
        }
    }
}

/// The newest base revision of a Limine release that does not report it.
fn limine_newest_revision(version: &str) -> Option<u64> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    let (major, minor, patch) = (
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    );
    match (major, minor, patch) {
        (8, 0..=2, _) => Some(2),
        (8, 3, 0..=1) => Some(3),
        _ => None,
    }
}

/// Works out the revision in effect from the revision `requested` (baton
/// asks for [`REQUESTED`]; a test build asks for less), the tag and the
/// bootloader's name and version (from the bootloader-info response, when
/// there is one).
pub fn resolve(
    requested: u64,
    tag: Tag,
    bootloader: Option<(&str, &str)>,
) -> Result<InEffect, RevisionError> {
    let in_effect = if tag.revision == 0 {
        InEffect {
            revision: requested,
            basis: Basis::Honoured,
        }
    } else if tag.loaded != LOADED_MAGIC {
        InEffect {
            revision: tag.loaded,
            basis: Basis::Reported,
        }
    } else {
        let revision = match bootloader {
            Some(("Limine", version)) => limine_newest_revision(version),
            _ => None,
        }
        .ok_or(RevisionError::Unknown)?;
        InEffect {
            revision,
            basis: Basis::InferredFromVersion,
        }
    };
    if (OLDEST_SUPPORTED..=REQUESTED).contains(&in_effect.revision) {
        Ok(in_effect)
    } else {
        Err(RevisionError::Unsupported(in_effect))
    }
}

/// A pointer Limine hands over whose meaning depends on the revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootPointer {
    /// The EFI system table response.
    EfiSystemTable,
    /// The RSDP response.
    Rsdp,
    /// The SMBIOS entry points.
    Smbios,
    /// The EFI memory map (always in the HHDM).
    EfiMemoryMap,
}

impl BootPointer {
    /// Whether the pointer is a physical address under `revision`, rather
    /// than an HHDM address.
    pub fn is_physical(self, revision: u64) -> bool {
        match self {
            BootPointer::EfiSystemTable | BootPointer::Smbios => matches!(revision, 3 | 4),
            BootPointer::Rsdp => revision == 3,
            BootPointer::EfiMemoryMap => false,
        }
    }

    /// The physical address `value` stands for under `revision`, or `None`
    /// when an HHDM address lies below the HHDM.
    pub fn to_phys(self, revision: u64, value: u64, hhdm_offset: u64) -> Option<u64> {
        if self.is_physical(revision) {
            Some(value)
        } else {
            value.checked_sub(hhdm_offset)
        }
    }
}

/// Whether base revision `revision` promises that Limine's HHDM maps a
/// memory-map entry of Limine type `ty` covering `start..end`.
///
/// Revision 2 (like 0 and 1) maps the first 4 GiB whole and, above them,
/// every entry but reserved and bad memory. From revision 3 only the
/// entries of [`hhdm_types`] are mapped.
pub fn hhdm_promises(revision: u64, ty: u64, start: u64, end: u64) -> bool {
    use crate::memmap::limine::{BAD_MEMORY, RESERVED};
    if revision <= 2 {
        return end <= FOUR_GIB || (start >= FOUR_GIB && !matches!(ty, RESERVED | BAD_MEMORY));
    }
    hhdm_types(revision).contains(&ty)
}

const FOUR_GIB: u64 = 1 << 32;

/// The Limine memory-map types whose entries the HHDM maps under revision
/// 3 and later (revision 3: usable, bootloader-reclaimable, executable and
/// modules, framebuffer; 4 adds ACPI tables and NVS; 5 adds the
/// reserved-mapped EFI runtime regions).
pub fn hhdm_types(revision: u64) -> &'static [u64] {
    use crate::memmap::limine::*;
    const R3: [u64; 7] = [
        USABLE,
        BOOTLOADER_RECLAIMABLE,
        EXECUTABLE_AND_MODULES,
        FRAMEBUFFER,
        ACPI_RECLAIMABLE,
        ACPI_NVS,
        RESERVED_MAPPED,
    ];
    match revision {
        0..=2 => &[],
        3 => &R3[..4],
        4 => &R3[..6],
        _ => &R3,
    }
}

/// How a pointer Limine handed over was given: below the HHDM offset it is
/// a physical address, at or above it an HHDM one.
pub fn is_physical_form(value: u64, hhdm_offset: u64) -> bool {
    value < hhdm_offset
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_HONOURED: u64 = REQUESTED;

    fn tag(loaded: u64, revision: u64) -> Tag {
        Tag { loaded, revision }
    }

    #[test]
    fn honoured_request_is_in_effect() {
        let e = resolve(REQUESTED, tag(LOADED_MAGIC, 0), None).unwrap();
        assert_eq!(e.revision, REQUESTED);
        assert_eq!(e.basis, Basis::Honoured);
    }

    #[test]
    fn reported_revision_wins_over_version() {
        let e = resolve(REQUESTED, tag(4, NOT_HONOURED), Some(("Limine", "10.2.0"))).unwrap();
        assert_eq!((e.revision, e.basis), (4, Basis::Reported));
    }

    #[test]
    fn limine_8_2_falls_back_to_revision_2() {
        let e = resolve(
            REQUESTED,
            tag(LOADED_MAGIC, NOT_HONOURED),
            Some(("Limine", "8.2.0")),
        )
        .unwrap();
        assert_eq!((e.revision, e.basis), (2, Basis::InferredFromVersion));
        assert_eq!(e.to_string(), "2 (inferred from the bootloader version)");
        for v in ["8.0.0", "8.0.14", "8.1.2"] {
            assert_eq!(
                resolve(
                    REQUESTED,
                    tag(LOADED_MAGIC, NOT_HONOURED),
                    Some(("Limine", v))
                )
                .unwrap()
                .revision,
                2
            );
        }
        for v in ["8.3.0", "8.3.1"] {
            assert_eq!(
                resolve(
                    REQUESTED,
                    tag(LOADED_MAGIC, NOT_HONOURED),
                    Some(("Limine", v))
                )
                .unwrap()
                .revision,
                3
            );
        }
    }

    #[test]
    fn silent_unknown_bootloader_is_an_error() {
        for bl in [
            None,
            Some(("Limine", "8.3.2")),
            Some(("Other", "8.2.0")),
            Some(("Limine", "x")),
        ] {
            assert_eq!(
                resolve(REQUESTED, tag(LOADED_MAGIC, NOT_HONOURED), bl),
                Err(RevisionError::Unknown)
            );
        }
    }

    #[test]
    fn an_honoured_old_revision_is_refused() {
        // A kernel built to ask for revision 1 gets it from Limine 8.
        let err = resolve(1, tag(LOADED_MAGIC, 0), Some(("Limine", "8.2.0"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "base revision 1 (honoured) is in effect; baton needs 2 to 5"
        );
    }

    #[test]
    fn revisions_outside_the_supported_range_are_refused() {
        for rev in [0, 1, 6, 99] {
            let err = resolve(REQUESTED, tag(rev, NOT_HONOURED), None).unwrap_err();
            assert!(matches!(err, RevisionError::Unsupported(e) if e.revision == rev));
        }
        assert!(
            RevisionError::Unsupported(InEffect {
                revision: 1,
                basis: Basis::Reported
            })
            .to_string()
            .contains("baton needs 2 to 5")
        );
    }

    #[test]
    fn hhdm_coverage_per_revision() {
        use crate::memmap::limine::*;
        let gib = 1u64 << 30;
        // Revision 2: everything below 4 GiB, reserved included...
        assert!(hhdm_promises(2, RESERVED, 0xb000_0000, 0xc000_0000));
        // ...and above, all but reserved and bad memory.
        assert!(hhdm_promises(2, USABLE, 5 * gib, 6 * gib));
        assert!(!hhdm_promises(2, RESERVED, 5 * gib, 6 * gib));
        assert!(!hhdm_promises(2, BAD_MEMORY, 5 * gib, 6 * gib));
        // An entry across 4 GiB is only partly promised: not claimed whole.
        assert!(!hhdm_promises(2, RESERVED, 3 * gib, 5 * gib));
        // Revision 3: only what the kernel and Limine own.
        for ty in [
            USABLE,
            BOOTLOADER_RECLAIMABLE,
            EXECUTABLE_AND_MODULES,
            FRAMEBUFFER,
        ] {
            assert!((3..=5).all(|r| hhdm_promises(r, ty, 0x1000, 0x2000)));
        }
        assert!(!hhdm_promises(3, ACPI_RECLAIMABLE, 0x1000, 0x2000));
        assert!(!hhdm_promises(3, RESERVED, 0x1000, 0x2000));
        // Revision 4 adds ACPI, 5 the EFI runtime regions.
        assert!(hhdm_promises(4, ACPI_NVS, 0x1000, 0x2000));
        assert!(!hhdm_promises(4, RESERVED_MAPPED, 0x1000, 0x2000));
        assert!(hhdm_promises(5, RESERVED_MAPPED, 0x1000, 0x2000));
        assert!(!hhdm_promises(5, RESERVED, 0x1000, 0x2000));
        assert!(!hhdm_promises(5, BAD_MEMORY, 0x1000, 0x2000));
    }

    #[test]
    fn pointer_forms() {
        let hhdm = 0xffff_8000_0000_0000;
        assert!(is_physical_form(0x3f5e_c018, hhdm));
        assert!(!is_physical_form(hhdm + 0x3f5e_c018, hhdm));
        // The form agrees with what each revision says of the system table.
        for (rev, physical) in [(2, false), (3, true), (4, true), (5, false)] {
            assert_eq!(BootPointer::EfiSystemTable.is_physical(rev), physical);
        }
    }

    #[test]
    fn pointer_meaning_per_revision() {
        use BootPointer::*;
        let hhdm = 0xffff_8000_0000_0000;
        // EFI system table: physical in 3 and 4 only.
        assert_eq!(EfiSystemTable.to_phys(2, hhdm + 0x1000, hhdm), Some(0x1000));
        assert_eq!(EfiSystemTable.to_phys(3, 0x1000, hhdm), Some(0x1000));
        assert_eq!(EfiSystemTable.to_phys(4, 0x1000, hhdm), Some(0x1000));
        assert_eq!(EfiSystemTable.to_phys(5, hhdm + 0x1000, hhdm), Some(0x1000));
        // RSDP: physical in 3 only.
        assert!(Rsdp.is_physical(3) && !Rsdp.is_physical(4));
        assert!(Smbios.is_physical(4) && !Smbios.is_physical(5));
        // The EFI memory map never is.
        assert!((2..=5).all(|r| !EfiMemoryMap.is_physical(r)));
        // An HHDM pointer below the HHDM is nonsense, not an underflow.
        assert_eq!(EfiMemoryMap.to_phys(2, 0x1000, hhdm), None);
    }
}
