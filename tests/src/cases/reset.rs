//! Boot cases: resets: through EFI ResetSystem and the keyboard controller.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "efi-reboot",
            across_releases: true,
            about: "reboot resets through EFI ResetSystem(EfiResetCold)",
            cmdline: "reboot",
            debug_exit: false,
            exit: Exit::Reset,
            common: &[],
            lines: &["reboot: EFI ResetSystem(EfiResetCold)"],
            absent: &["keyboard controller"],
            ..BASE
        },
        Case {
            name: "reboot-bios",
            about: "reboot without runtime services resets through the keyboard controller \
                    (QEMU's trace shows 0xfe written to port 0x64)",
            cmdline: "reboot",
            firmware: Firmware::SeaBios,
            debug_exit: false,
            exit: Exit::KbcReset,
            common: &[],
            lines: &["reboot: no EFI runtime services; resetting through the keyboard controller"],
            ..BASE
        },
    ]
}
