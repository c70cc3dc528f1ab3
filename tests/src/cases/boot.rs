//! Boot cases: the boot chains: UEFI and BIOS, CD and disk, RAM from 128 MiB to 8 GiB, the default log.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "uefi-cd",
            exercises: &["efi:", "console:", "handoff:", "boot:"],
            across_releases: true,
            about: "UEFI (OVMF) boot from the ISO: handover logged, self-tests pass",
            lines: &[
                "firmware UEFI (64-bit)",
                "boot: paging 4-level",
                "boot: command line \"loglevel=debug test\"",
                "EFI descriptors (desc_size *, version 1)",
                "boot: EFI system table at physical 0x*",
                // At debug level every leaf of Limine's tables is counted.
                "DEBUG limine: page tables at entry: * frames, * leaves",
                "DEBUG limine:   leaves in HHDM: 4K * / 2M * / 1G *",
                "DEBUG handoff: Limine's tables vs baton's: * vs * page-table frames, * vs * leaves*",
            ],
            ..BASE
        },
        // The log a user sees by default: what they need at INFO (tables
        // built, CR3 switched, verified, W^X, runtime services, memory,
        // CPUs), the rest at DEBUG; the shape of every line (at most 160
        // characters, none that says only zeros) is checked in every case.
        Case {
            name: "log-default",
            about: "the default log level: the handoff's essentials at INFO, the details at \
                    DEBUG and left out",
            default_log: true,
            common: &[],
            lines: &[
                "] INFO  baton * booting",
                "] INFO  cpu: protections: NXE on, WP on, *",
                "] INFO  console: the log goes to COM1 and the screen, by default",
                "] INFO  boot: bootloader Limine *, firmware UEFI (64-bit)",
                "] INFO  boot: command line \"test\"",
                "] INFO  kaslr: bases: physmap 0x*, vmalloc 0x*, vmemmap 0x*, kernel image 0xffffffff*",
                "] INFO  handoff: built * page-table frames at 0x*-0x*; root 0x*",
                "] INFO  handoff: CR3 = 0x*: running on baton's 4-level tables; PAT loaded *",
                "] INFO  handoff: live tables match the plan: * leaves, * MiB mapped",
                "] INFO  x86/mm: Checked W+X mappings: passed, no W+X pages found.",
                "] INFO  efi: SetVirtualAddressMap(* descriptors) from a temporary address space *: success",
                "] INFO  efi: EFI address space: x86/mm: Checked W+X mappings: passed, no W+X pages found.",
                "] INFO  efi: secure boot: *",
                "] INFO  handoff: phases: parse * us, *, total * us",
                "] INFO  mm: frames: * MiB free *",
                "] INFO  smp: 1 of 1 CPUs online, all on baton's page tables *",
                "] INFO  selftest: * tests: * passed, 0 failed, * skipped",
            ],
            absent: &[
                "] DEBUG *",
                "*limine: *",
                "*layout: *",
                "*handoff: plan: *",
                "*handoff: leaves in *",
                "*efi: runtime 0x*",
                "*mm: vmemmap*",
            ],
            ..BASE
        },
        Case {
            name: "bios-cd",
            across_releases: true,
            about: "legacy BIOS (SeaBIOS) boot from the ISO: no EFI map, still works",
            firmware: Firmware::SeaBios,
            lines: &[
                "firmware BIOS",
                "boot: memory map: * Limine entries, no EFI memory map",
                "efi: BIOS boot: no UEFI runtime services; runtime services unavailable",
                "selftest: ok   efi: runtime services exactly on UEFI boots, their window unmapped otherwise",
            ],
            absent: &["EFI system table"],
            ..BASE
        },
        Case {
            name: "uefi-usb-disk",
            across_releases: true,
            about: "the GPT disk image as a USB stick (qemu-xhci + usb-storage) under OVMF",
            media: Media::UsbDisk,
            lines: &["firmware UEFI (64-bit)"],
            ..BASE
        },
        Case {
            name: "bios-disk",
            across_releases: true,
            about: "the GPT disk image under SeaBIOS (needs the limine host utility)",
            media: Media::Disk,
            firmware: Firmware::SeaBios,
            needs: Needs::LimineTool,
            lines: &["firmware BIOS"],
            ..BASE
        },
        Case {
            name: "uefi-5-level",
            about: "-cpu max: Limine hands over in 5-level paging and baton says so",
            cpu: Some("max"),
            lines: &["boot: paging 5-level"],
            ..BASE
        },
        Case {
            name: "handoff-ovmf-128m",
            about: "handoff under OVMF with 128 MiB, -cpu qemu64 (no 1 GiB pages)",
            memory: "128M",
            cpu: Some("qemu64"),
            lines: &[
                "handoff: RAM 127 MiB up to 0x8000000: *",
                "1G pages no",
                "pages up to 2 MiB",
                "handoff: leaves in physmap: 4K * / 2M * / 1G 0",
            ],
            ..BASE
        },
        Case {
            name: "handoff-ovmf-4g-pc",
            about: "handoff under OVMF on the pc machine (i440FX) with 4 GiB",
            machine: "pc",
            memory: "4G",
            // i440FX keeps 3 GiB below the PCI hole (q35: 2 GiB), the rest
            // above 4 GiB.
            lines: &["handoff: RAM 4095 MiB up to 0x140000000: *"],
            ..BASE
        },
        Case {
            name: "handoff-ovmf-8g",
            across_releases: true,
            about: "handoff under OVMF with 8 GiB (RAM above 4 GiB, unsorted EFI map)",
            memory: "8G",
            cpu: Some("qemu64"),
            lines: &[
                "handoff: RAM 8191 MiB up to 0x280000000: *",
                "handoff: memory map: * EFI descriptors and * Limine entries -> * regions; the EFI map was not sorted",
            ],
            ..BASE
        },
        Case {
            name: "handoff-max-8g",
            about: "-cpu max: 5-level paging and 1 GiB pages in the physmap, 8 GiB",
            memory: "8G",
            cpu: Some("max"),
            lines: &[
                "boot: paging 5-level",
                "1G pages yes",
                "pages up to 1 GiB",
                "handoff: CR3 = 0x*: running on baton's 5-level tables",
                "page-table frames: * (PML5 1, PML4 2, *",
            ],
            absent: &["handoff: leaves in physmap: 4K * / 2M * / 1G 0"],
            ..BASE
        },
        Case {
            name: "handoff-bios-8g",
            about: "handoff on a BIOS boot (Limine's map only), pc machine, 8 GiB",
            firmware: Firmware::SeaBios,
            machine: "pc",
            memory: "8G",
            lines: &[
                "boot: bootloader Limine *, firmware BIOS",
                "boot: memory map: * Limine entries, no EFI memory map",
                // The pc machine puts the RAM above 3 GiB past 4 GiB.
                "handoff: RAM 8191 MiB up to 0x240000000: *",
            ],
            ..BASE
        },
    ]
}
