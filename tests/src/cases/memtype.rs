//! Boot cases: memory types that cut the physmap, exercised at boot.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        // Memory types that cut the physmap, exercised at boot: the plan
        // splits large pages where the type changes, and the checks before
        // and after the switch hold every physmap leaf to the memory map
        // and the MTRRs themselves, not to the plan.
        Case {
            name: "mtrr-uc",
            about: "a variable MTRR makes 1 MiB of RAM uncached half-way into a 2 MiB page \
                    (injected): the physmap is cut there, at a cost in leaves, and verified",
            cmdline: "test inject=mtrr-uc",
            lines: &[
                "inject: variable MTRR * set to UC over 0x*00000-0x*00000",
                "handoff: MTRRs enabled: default WB, fixed ranges on, 3 variable ranges",
                "handoff: memory-type cuts: 2 MTRR and 0 EFI-attribute splits: *",
            ],
            absent: &["+0 leaves"],
            exercises: &["handoff:"],
            ..BASE
        },
        Case {
            name: "mtrr-wt",
            about: "as mtrr-uc, write-through: the physmap maps the range WT (PAT), cut from \
                    its write-back neighbours",
            cmdline: "test inject=mtrr-wt",
            lines: &[
                "inject: variable MTRR * set to WT over 0x*00000-0x*00000",
                "handoff: memory-type cuts: 2 MTRR and 0 EFI-attribute splits: *",
            ],
            absent: &["+0 leaves"],
            exercises: &["handoff:"],
            ..BASE
        },
        Case {
            name: "efi-uc-ram",
            about: "an EFI conventional-memory descriptor allows UC only (injected): the \
                    physmap maps it uncached, cut from its neighbours, and verified",
            cmdline: "test inject=efi-uc-ram",
            lines: &[
                "inject: EFI descriptor * (conventional memory 0x*-0x*) now allows UC only",
                "handoff: memory-type cuts: 0 MTRR and * EFI-attribute splits: *",
            ],
            absent: &[" 0 EFI-attribute splits", "+0 leaves"],
            exercises: &["handoff:"],
            ..BASE
        },
    ]
}
