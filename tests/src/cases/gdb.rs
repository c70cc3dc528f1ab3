//! Boot cases: GDB sessions through the handoff.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "gdb-break-kmain",
            about: "baton.gdb loads the kernel's symbols: `break kmain` stops there \
                    (nokaslr, as `make debug` boots)",
            cmdline: "test nokaslr",
            needs: Needs::Gdb,
            gdb: Some(Gdb::BreakKmain),
            common: &[],
            ..BASE
        },
        Case {
            name: "gdb-debug-build",
            about: "in the unoptimised build (make debug) `break kmain` stops at kmain's own line",
            kernel: Kernel::Gdb,
            needs: Needs::Gdb,
            cmdline: "test nokaslr",
            gdb: Some(Gdb::KmainSourceLine),
            common: &[],
            ..BASE
        },
        Case {
            name: "gdb-handoff",
            about: "GDB through the handoff: breaks on each side of the CR3 switch by name; \
                    baton-walk translates a physmap address, baton-ptdump prints what the \
                    kernel's ptdump does, baton-memmap shows the kernel's region",
            kernel: Kernel::Gdb,
            // As `make debug` boots.
            cmdline: "test nokaslr ptdump",
            needs: Needs::Gdb,
            gdb: Some(Gdb::Handoff),
            common: &[],
            ..BASE
        },
        Case {
            name: "gdb-handoff-5-level",
            about: "the GDB helpers on 5-level tables (-cpu max)",
            kernel: Kernel::Gdb,
            // As `make debug` boots.
            cmdline: "test nokaslr ptdump",
            cpu: Some("max"),
            needs: Needs::Gdb,
            gdb: Some(Gdb::Handoff),
            common: &[],
            ..BASE
        },
    ]
}
