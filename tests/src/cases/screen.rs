//! Boot cases: the screen console.

use super::*;

/// A test run without isa-debug-exit: the screen read back once it halts.
const SCREEN: Case = Case {
    debug_exit: false,
    exit: Exit::Halted,
    screen: Some(NO_DEBUG_EXIT),
    lines: &SCREEN_LINES,
    ..BASE
};

pub(super) fn cases() -> Vec<Case> {
    vec![
        // The screen console: the screen read back at the end
        // and compared with the serial log replayed on the same console.
        Case {
            name: "screen-uefi",
            exercises: &["console:"],
            about: "the whole log on the screen under OVMF: the last lines of a test run, \
                    pixel for pixel, after scrolling",
            ..SCREEN
        },
        Case {
            name: "console-fb-only",
            about: "`console=fb`: the log on the screen alone, and on the serial port only \
                    while the screen cannot draw it (paused by a self-test)",
            cmdline: "console=fb test",
            // The kernel's serial log is nearly empty by design.
            common: &[],
            lines: &["log: the screen is paused: this line reaches the serial port alone"],
            absent: &["console: the log goes to", "selftest: ok"],
            ..BASE
        },
        Case {
            name: "screen-bios",
            about: "the whole log on the screen under SeaBIOS (Limine's VBE framebuffer)",
            firmware: Firmware::SeaBios,
            ..SCREEN
        },
        Case {
            name: "screen-fault-null",
            about: "a null-pointer read: the exception report on the screen, in the report's \
                    colours",
            cmdline: "test fault=null",
            debug_exit: false,
            exit: Exit::Halted,
            faults: true,
            screen: Some("baton: halted."),
            lines: &[
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x0",
                "  CR2 0x0000000000000000: not present, read, supervisor",
            ],
            ..STOPS
        },
        Case {
            name: "screen-fault-in-console",
            about: "a fault inside the console, its locks held mid-line: the report still \
                    reaches the screen",
            cmdline: "test fault=console",
            debug_exit: false,
            exit: Exit::Halted,
            faults: true,
            screen: Some("baton: halted."),
            lines: &[
                "INFO  fault: inside the console: ",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x0",
            ],
            absent: &["(not reached)"],
            ..STOPS
        },
    ]
}
