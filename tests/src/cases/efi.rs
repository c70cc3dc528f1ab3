//! Boot cases: EFI runtime services: SetVirtualAddressMap, calls, faults in firmware, no attributes table.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "efi-runtime-shutdown",
            exercises: &["efi:"],
            across_releases: true,
            about: "OVMF -bios: SetVirtualAddressMap, GetTime, variables listed, set and read \
                    back, then ResetSystem powers off (no isa-debug-exit)",
            cmdline: "test poweroff",
            debug_exit: false,
            exit: Exit::Shutdown,
            lines: &[
                "efi: system table at 0x*: UEFI 2.*, firmware EDK II revision 0x*",
                "efi: memory attributes table: * entries",
                "efi: runtime 0x*-0x* RUNTIME_SERVICES_CODE WB -> 0xfffffffe*",
                "efi: window: * mappings, permissions per descriptor, in the EFI address space only",
                "efi: window after SetVirtualAddressMap: * mappings, permissions from the memory \
                 attributes table",
                "efi: SetVirtualAddressMap(* descriptors) from a temporary address space * success",
                "efi: runtime services at 0xfffffffe*",
                "efi: the EFI address space matches the plan with the window: * leaves, * in the window; the kernel's tables: 0 there",
                "efi: EFI address space: x86/mm: Checked W+X mappings: passed, no W+X pages found.",
                "efi: the runtime images' PE sections agree with the attributes table on every code page",
                "efi: GetTime: 20*-*-* *:*:*",
                "efi: * variables, BootOrder among them: true",
                "selftest: ok   efi: runtime services and their code live in the EFI window",
                "selftest: ok   efi: GetTime gives a plausible date",
                "selftest: ok   efi: GetNextVariableName lists the variables",
                "selftest: ok   efi: SetVariable then GetVariable reads the value back",
                "efi: the temporary address space's * page-table frames given back to the allocator",
                "selftest: ok   efi: the temporary address space's page tables are back with the \
                 allocator",
                "poweroff: EFI ResetSystem(EfiResetShutdown)",
            ],
            absent: &["runtime services unavailable", "W+X mappings: FAILED"],
            ..BASE
        },
        Case {
            name: "efi-pflash-persist",
            across_releases: true,
            about: "pflash OVMF: the flash is a runtime MMIO region; a variable written on \
                    one boot is read back on the next",
            firmware: Firmware::OvmfPflash,
            needs: Needs::PflashOvmf,
            cmdline: "test poweroff",
            debug_exit: false,
            exit: Exit::Shutdown,
            boots: 2,
            lines: &[
                "efi: runtime 0x*-0x* MMIO UC -> 0xfffffffe*",
                "efi: BatonBootCount was 1, now 2",
                "selftest: ok   efi: the non-volatile boot counter goes up by one",
                "poweroff: EFI ResetSystem(EfiResetShutdown)",
            ],
            ..BASE
        },
        Case {
            name: "efi-5-level",
            exercises: &["efi:"],
            about: "runtime services through 5-level tables (-cpu max)",
            cpu: Some("max"),
            lines: &[
                "boot: paging 5-level",
                "efi: SetVirtualAddressMap(* descriptors) from a temporary address space * success",
                "selftest: ok   efi: SetVariable then GetVariable reads the value back",
            ],
            ..BASE
        },
        Case {
            name: "efi-qemu64",
            exercises: &["efi:"],
            about: "runtime services with -cpu qemu64 (no 1 GiB pages)",
            cpu: Some("qemu64"),
            lines: &[
                "1G pages no",
                "efi: SetVirtualAddressMap(* descriptors) from a temporary address space * success",
                "selftest: ok   efi: GetTime gives a plausible date",
            ],
            ..BASE
        },
        Case {
            name: "efi-svam-failure",
            across_releases: true,
            about: "SetVirtualAddressMap fails (wrong descriptor version, injected): runtime \
                    services unavailable, the window unmapped, W^X still clean, the boot goes on",
            cmdline: "test inject=svam-version",
            lines: &[
                "inject: SetVirtualAddressMap gets descriptor version *",
                "efi: SetVirtualAddressMap failed: *INVALID_PARAMETER*; runtime services unavailable",
                "efi: the temporary address space's * page-table frames given back to the allocator",
                "selftest: ok   efi: runtime services exactly on UEFI boots, their window unmapped \
                 otherwise",
                "x86/mm: Checked W+X mappings: passed, no W+X pages found.",
            ],
            absent: &["efi: runtime services at", "W+X mappings: FAILED"],
            ..BASE
        },
        Case {
            name: "efi-fault",
            about: "the firmware faults in a runtime call (GetTime's page unmapped in the EFI \
                    address space, injected): the fault is contained, the call returns \
                    EFI_ABORTED, runtime services go off, the boot and the self-tests go on",
            cmdline: "test inject=efi-fault",
            lines: &[
                "inject: window 0xfffffffe*-0xfffffffe* (holding 0xfffffffe*) unmapped in the EFI \
                 address space",
                "efi: firmware fault in GetTime: * (vector 14) at RIP 0xfffffffe*, error code \
                 0x1*, CR2 0xfffffffe*",
                "efi: the call returns EFI_ABORTED; runtime services are off for the rest of the boot",
                "efi: GetTime failed: ABORTED",
                "selftest: ok   efi: runtime services exactly on UEFI boots, their window unmapped \
                 otherwise",
                "selftest: skip efi: GetTime gives a plausible date (*)",
                "selftest: skip efi: SetVariable then GetVariable reads the value back (*)",
            ],
            absent: &[
                "efi: firmware fault in GetVariable*",
                "efi: firmware fault in SetVariable*",
            ],
            ..BASE
        },
        Case {
            name: "efi-no-mat",
            about: "without the memory attributes table (ignored, injected) the runtime images' \
                    PE/COFF sections give the window's permissions: SetVirtualAddressMap, \
                    GetTime, variables and ResetSystem work, W^X holds in both address spaces",
            cmdline: "test inject=efi-no-mat poweroff",
            debug_exit: false,
            exit: Exit::Shutdown,
            lines: &[
                "inject: the memory attributes table at 0x* ignored",
                "efi: runtime code 0x*-0x*: * PE/COFF images, * pages in none",
                "efi: no memory attributes table: permissions from the runtime images' PE/COFF \
                 sections*",
                "efi: SetVirtualAddressMap(* descriptors) from a temporary address space * success",
                "efi: window after SetVirtualAddressMap: * mappings, permissions from the runtime \
                 images' PE/COFF headers",
                "efi: EFI address space: x86/mm: Checked W+X mappings: passed, no W+X pages found.",
                "x86/mm: Checked W+X mappings: passed, no W+X pages found.",
                "efi: GetTime: 20*-*-* *:*:*",
                "selftest: skip efi: the runtime images' PE sections agree with the memory \
                 attributes table (*)",
                "selftest: ok   efi: GetTime gives a plausible date",
                "selftest: ok   efi: SetVariable then GetVariable reads the value back",
                "selftest: ok   efi: GetNextVariableName lists the variables",
                "poweroff: EFI ResetSystem(EfiResetShutdown)",
            ],
            absent: &[
                "efi: firmware fault*",
                "efi: memory attributes table: * entries",
            ],
            ..BASE
        },
    ]
}
