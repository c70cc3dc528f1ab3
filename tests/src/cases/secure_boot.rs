//! Boot cases: Secure Boot on firmware that enforces it.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        // Secure Boot: firmware -> Limine -> limine.conf -> kernel, on
        // firmware that enforces it, with Debian's snakeoil test key (the
        // test's key, never a default of the build).
        Case {
            name: "secure-boot-signed",
            about: "`make hdd SECURE_BOOT=1` under Secure Boot (snakeoil OVMF): the signed Limine \
                    runs with the config hash enrolled and the kernel's hash in limine.conf; \
                    baton reads SecureBoot 1, SetupMode 0",
            across_releases: true,
            media: Media::UsbDisk,
            firmware: Firmware::SecureBootOvmf,
            signing: Signing::Signed,
            needs: Needs::SecureBoot,
            lines: &[
                "BdsDxe: starting Boot* \"UEFI QEMU QEMU USB HARDDRIVE",
                "efi: secure boot: enabled (SecureBoot 1, SetupMode 0)",
                "selftest: ok   efi: SecureBoot and SetupMode read through GetVariable",
            ],
            ..BASE
        },
        Case {
            name: "secure-boot-unsigned-limine",
            about: "the signed image's Limine with its signature removed: the firmware refuses \
                    it (Access Denied); neither Limine nor baton runs",
            media: Media::UsbDisk,
            firmware: Firmware::SecureBootOvmf,
            signing: Signing::UnsignedLimine,
            needs: Needs::SecureBoot,
            exit: Exit::Stopped,
            common: &[],
            kernel_starts: false,
            stop_at: &["Access Denied"],
            deadline: Some(60),
            lines: &[
                "BdsDxe: failed to load Boot* \"UEFI QEMU QEMU USB HARDDRIVE *: Access Denied",
            ],
            absent: &["limine: ", "] INFO  baton"],
            ..BASE
        },
        Case {
            name: "secure-boot-tampered-kernel",
            about: "the signed image with one byte appended to the kernel (harmless to an ELF \
                    loader): the firmware starts the signed Limine, which refuses the kernel's \
                    hash; baton never runs",
            across_releases: true,
            media: Media::UsbDisk,
            firmware: Firmware::SecureBootOvmf,
            signing: Signing::TamperedKernel,
            needs: Needs::SecureBoot,
            exit: Exit::Stopped,
            common: &[],
            kernel_starts: false,
            stop_at: &["does not match!"],
            deadline: Some(60),
            lines: &[
                "BdsDxe: starting Boot* \"UEFI QEMU QEMU USB HARDDRIVE",
                "PANIC: Blake2b hash for URI `boot():/boot/baton` does not match!",
            ],
            absent: &["] INFO  baton"],
            ..BASE
        },
        Case {
            name: "secure-boot-tampered-config",
            about: "the signed image with a comment appended to limine.conf (harmless to its \
                    parser): the signed Limine refuses a config whose hash is not the one \
                    enrolled in it; baton never runs",
            across_releases: true,
            media: Media::UsbDisk,
            firmware: Firmware::SecureBootOvmf,
            signing: Signing::TamperedConfig,
            needs: Needs::SecureBoot,
            exit: Exit::Stopped,
            common: &[],
            kernel_starts: false,
            stop_at: &["CHECKSUM MISMATCH FOR CONFIG FILE"],
            deadline: Some(60),
            lines: &[
                "BdsDxe: starting Boot* \"UEFI QEMU QEMU USB HARDDRIVE",
                "PANIC: !!! CHECKSUM MISMATCH FOR CONFIG FILE !!!",
            ],
            absent: &["limine: Loading", "] INFO  baton"],
            ..BASE
        },
    ]
}
