//! Boot cases: CPU protections, missing responses, the command line, power-off.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        // CPU protections.
        Case {
            name: "protections-max",
            about: "-cpu max: NXE, WP, SMEP, SMAP, UMIP and global pages all on",
            cpu: Some("max"),
            lines: &[
                "cpu: protections: NXE on, WP on, SMEP on, SMAP on, UMIP on, global pages on",
                "selftest: ok   cpu: every protection the CPU has is on",
                // TCG's -cpu max has RDRAND but no RDSEED.
                "kaslr: seed from RDRAND, TSC, *",
            ],
            absent: &["the layout is weakly randomised"],
            ..BASE
        },
        Case {
            name: "protections-qemu64",
            about: "-cpu qemu64: SMEP, SMAP and UMIP absent and said so; the rest on",
            cpu: Some("qemu64"),
            lines: &[
                "cpu: protections: NXE on, WP on, SMEP absent, SMAP absent, UMIP absent, global pages on",
                "selftest: ok   cpu: every protection the CPU has is on",
                // No RDRAND or RDSEED: the seed is the TSC and Limine's.
                "WARN  kaslr: no RDRAND or RDSEED: the layout is weakly randomised (seed from TSC, *",
            ],
            ..BASE
        },
        Case {
            name: "missing-hhdm-response",
            about: "a kernel without the HHDM request stops cleanly, saying what is missing",
            kernel: Kernel::OmitHhdm,
            exit: Exit::Fail,
            common: &[],
            lines: &[
                "boot: missing Limine response: HHDM (higher-half direct map)*",
                "boot: cannot continue; stopping",
            ],
            absent: &["selftest:", "boot: HHDM offset"],
            ..BASE
        },
        Case {
            name: "unusable-base-revision",
            about: "a kernel asking for base revision 1 gets it and stops cleanly, saying why",
            kernel: Kernel::BaseRevision1,
            exit: Exit::Fail,
            common: &[],
            lines: &[
                "ERROR boot: unusable Limine base revision: base revision 1 (honoured) is in effect; baton needs 2 to 5",
                "boot: cannot continue; stopping",
            ],
            absent: &["selftest:", "boot: HHDM offset"],
            ..BASE
        },
        Case {
            name: "cmdline-loglevel",
            about: "loglevel=warn silences info; unknown options are logged, not fatal",
            cmdline: "loglevel=warn bogus poweroff",
            debug_exit: false,
            exit: Exit::Shutdown,
            common: &[],
            lines: &["WARN  cmdline: unknown option `bogus` ignored"],
            absent: &["INFO "],
            ..BASE
        },
        Case {
            name: "cmdline-not-utf8",
            about: "a command line with a byte that is not UTF-8: one warning naming its offset, \
                    `test poweroff` still honoured",
            cmdline: "test caf\\xe9 poweroff",
            debug_exit: false,
            exit: Exit::Shutdown,
            lines: &[
                "WARN  cmdline: not valid UTF-8: first bad byte at offset 23; *",
                "WARN  cmdline: unknown option `caf\u{fffd}` ignored",
                "boot: command line \"loglevel=debug test caf\u{fffd} poweroff\"",
                "poweroff: EFI ResetSystem(EfiResetShutdown)",
            ],
            absent: &["not UTF-8)"],
            ..BASE
        },
        Case {
            name: "poweroff-bios",
            about: "poweroff without EFI runtime services ends the run through isa-debug-exit",
            cmdline: "poweroff",
            firmware: Firmware::SeaBios,
            common: &[],
            lines: &[
                "boot: bootloader Limine *",
                "poweroff: boot complete, powering off through isa-debug-exit",
            ],
            absent: &["selftest:"],
            ..BASE
        },
    ]
}
