//! Boot cases: hostile boot data: injected defects.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        // Hostile boot data: each injected defect is one error
        // line and a clean stop with the failure verdict.
        Case {
            name: "inject-overlap",
            across_releases: true,
            about: "overlapping EFI descriptors: a typed error naming both, a clean stop",
            cmdline: "test inject=overlap",
            lines: &[
                "inject: EFI descriptor 1 now duplicates descriptor 0",
                "ERROR handoff: memory map: EFI memory map entry 1 (type *, 0x*-0x*): overlaps entry 0 (ends at 0x*)",
                "handoff: cannot continue; stopping",
            ],
            absent: &["handoff: CR3 ="],
            ..STOPS
        },
        Case {
            name: "inject-lower-half",
            about: "a present lower-half entry in the new tables: caught through Limine's HHDM \
                    before the switch, a clean stop on Limine's tables",
            cmdline: "test inject=lower-half",
            lines: &[
                "inject: entry 0 of the new root table now points at an empty table at 0x*",
                "ERROR handoff: the new tables, through Limine's HHDM, before the switch: \
                 the lower half is not empty: top-level entry 0 is present (0x*)",
                "handoff: cannot continue; stopping",
            ],
            absent: &[
                "handoff: CR3 =",
                "handoff: new tables verified before the switch",
            ],
            ..STOPS
        },
        Case {
            name: "inject-overlap-bios",
            about: "overlapping Limine entries on a BIOS boot: a typed error, a clean stop",
            cmdline: "test inject=overlap",
            firmware: Firmware::SeaBios,
            lines: &[
                "inject: Limine entry * now reaches one page into entry *",
                "ERROR handoff: memory map: Limine memory map entry * (type *, 0x*-0x*): overlaps entry * (ends at 0x*)",
                "handoff: cannot continue; stopping",
            ],
            absent: &["handoff: CR3 ="],
            ..STOPS
        },
        Case {
            name: "inject-truncate",
            about: "a truncated EFI map: a typed error, a clean stop",
            cmdline: "test inject=truncate",
            lines: &[
                "ERROR handoff: memory map: EFI memory map of * bytes is not a whole number of *-byte descriptors",
                "handoff: cannot continue; stopping",
            ],
            ..STOPS
        },
        Case {
            name: "inject-no-efi-map",
            about: "a UEFI boot without an EFI map: a clear error, a clean stop",
            cmdline: "test inject=no-efi-map",
            lines: &[
                "ERROR handoff: UEFI boot without an EFI memory map: baton needs it for memory types and runtime services",
                "handoff: cannot continue; stopping",
            ],
            ..STOPS
        },
        Case {
            name: "inject-desc-size",
            about: "an absurd desc_size: a typed error, a clean stop",
            cmdline: "test inject=desc-size",
            lines: &[
                "ERROR handoff: memory map: EFI memory map descriptor size 8 is smaller than a descriptor (40 bytes)",
                "handoff: cannot continue; stopping",
            ],
            ..STOPS
        },
    ]
}
