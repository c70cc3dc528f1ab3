//! The boot tests: one QEMU boot per property.
//!
//! Each case names the image it boots (kernel build, medium, command line),
//! the machine, and what must hold afterwards: the exit status (from
//! isa-debug-exit: 33 pass, 35 fail), lines that must appear in the serial
//! log (`*` matches anything) and lines that must not.

/// Which kernel build the image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The kernel as `make kernel` builds it.
    Default,
    /// Built without the HHDM request (feature `test-omit-hhdm-request`):
    /// Limine really gives no HHDM response.
    OmitHhdm,
    /// Built to ask for base revision 1 (feature `test-base-revision-1`),
    /// which Limine honours and baton must refuse.
    BaseRevision1,
}

impl Kernel {
    /// The cargo feature selecting this build, if any.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Kernel::Default => None,
            Kernel::OmitHhdm => Some("test-omit-hhdm-request"),
            Kernel::BaseRevision1 => Some("test-base-revision-1"),
        }
    }
}

/// How the image reaches the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Media {
    /// The hybrid ISO as a CD-ROM.
    Cdrom,
    /// The GPT disk image as a USB mass-storage device on an xHCI controller.
    UsbDisk,
    /// The GPT disk image as the first hard disk.
    Disk,
}

/// The firmware QEMU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// OVMF as `-bios OVMF.fd` (UEFI; variables in RAM only).
    Ovmf,
    /// OVMF as two pflash devices, code read-only and a fresh writable copy
    /// of the variable store per case: its flash is a runtime MMIO region
    /// and variables persist from one boot of the case to the next.
    OvmfPflash,
    /// QEMU's default SeaBIOS (legacy BIOS).
    SeaBios,
}

/// How QEMU must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// isa-debug-exit with the pass verdict (status 33).
    Pass,
    /// isa-debug-exit with the fail verdict (status 35).
    Fail,
    /// The machine powered itself off (status 0), e.g. through EFI
    /// ResetSystem(EfiResetShutdown): QEMU's trace shows the guest's
    /// shutdown request.
    Shutdown,
    /// The machine reset itself (status 0, as `-no-reboot` turns a reset
    /// into an exit), e.g. through EFI ResetSystem(EfiResetCold): no
    /// shutdown request in QEMU's trace, and never a triple fault.
    Reset,
}

impl Exit {
    pub fn status(self) -> i32 {
        match self {
            Exit::Pass => 33,
            Exit::Fail => 35,
            Exit::Shutdown | Exit::Reset => 0,
        }
    }
}

/// A tool a case needs beyond QEMU; without it the case is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// The `limine` host utility (BIOS boot of the disk image).
    LimineTool,
    /// GDB, driving QEMU's gdbstub.
    Gdb,
    /// OVMF's split code and variable-store images (pflash).
    PflashOvmf,
}

/// One boot and what must hold about it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub about: &'static str,
    pub kernel: Kernel,
    pub media: Media,
    pub cmdline: &'static str,
    pub firmware: Firmware,
    pub machine: &'static str,
    pub cpu: Option<&'static str>,
    pub memory: &'static str,
    /// The guest's RAM is a sparse file (QEMU's `memory-backend-file`,
    /// made and unlinked in the logs directory), so that a guest of a
    /// terabyte needs only what it touches.
    pub memory_file: bool,
    pub exit: Exit,
    /// Patterns every boot of its kind must log (default: [`HANDOVER`]).
    pub common: &'static [&'static str],
    /// Patterns that must each match a line of the serial log.
    pub lines: &'static [&'static str],
    /// Patterns that must match no line.
    pub absent: &'static [&'static str],
    pub needs: Needs,
    /// Instead of booting to the end: stop at `kmain` under GDB.
    pub gdb: bool,
    /// Whether QEMU gets the isa-debug-exit device.
    pub debug_exit: bool,
    /// Boots of the same machine (same variable store) in a row; each must
    /// end as `exit` says, the last one's log is checked.
    pub boots: u8,
    /// The case provokes a CPU exception on purpose: its report is
    /// expected (a panic still is not).
    pub faults: bool,
    /// CPUs (`-smp`).
    pub smp: u8,
}

const BASE: Case = Case {
    name: "",
    about: "",
    kernel: Kernel::Default,
    media: Media::Cdrom,
    cmdline: "test",
    firmware: Firmware::Ovmf,
    machine: "q35",
    cpu: None,
    memory: "1G",
    memory_file: false,
    exit: Exit::Pass,
    common: HANDOVER,
    lines: &[],
    absent: &[],
    needs: Needs::Nothing,
    gdb: false,
    debug_exit: true,
    boots: 1,
    faults: false,
    smp: 1,
};

/// A test run that must stop cleanly with the failure verdict.
const STOPS: Case = Case {
    exit: Exit::Fail,
    common: &[],
    ..BASE
};

/// Lines that no boot may print.
pub const NEVER: &[&str] = &[];

/// Lines that no boot may print unless it provokes a fault on purpose (and
/// then checks the exact report).
pub const NEVER_UNLESS_FAULTING: &[&str] = &["baton: EXCEPTION", "baton: PANIC"];

/// What every complete boot logs about the handover.
pub const HANDOVER: &[&str] = &[
    "] INFO  baton * booting",
    "cpu: own stack, GDT/TSS (IST for #DF, NMI, #MC) and IDT loaded; TSC * MHz",
    "boot: bootloader Limine *, firmware *",
    "boot: base revision requested 5, in effect *",
    "boot: HHDM offset 0x*",
    "boot: kernel at physical 0x*, virtual 0xffffffff80000000",
    "boot: paging *-level",
    "boot: command line \"*\"",
    "boot: memory map: * Limine entries*",
    // The handoff: the switch, the checks of the live tables and
    // their statistics. Limine maps nothing in the lower half under every
    // base revision baton accepts (2 to 5; only revision 0 had an identity
    // map), on every machine the cases boot.
    "limine:   leaves in lower half: 4K 0 / 2M 0 / 1G 0",
    "handoff: memory map: * descriptors and * Limine entries -> * regions",
    "handoff: plan: * mappings; physmap * MiB at 0x* with pages up to *",
    "handoff: physmap cuts for memory types: * splits cost * extra leaves*",
    "handoff: built * page-table frames at 0x*",
    "handoff: new tables verified before the switch through Limine's HHDM: * leaves, * MiB mapped; lower half empty (256 top-level entries not present); * RAM samples translate to themselves, * non-RAM samples unmapped",
    "handoff: CR3 = 0x*: running on baton's *-level tables",
    "handoff: live tables match the plan: * leaves, * MiB mapped",
    "handoff: lower half empty; physmap: * RAM samples translate to themselves, * non-RAM samples unmapped",
    "x86/mm: Checked W+X mappings: passed, no W+X pages found.",
    "handoff: page-table frames: * (PML5 *, PML4 *, PDPT *, PD *, PT *); minimum for these page sizes: *",
    "handoff: leaves in physmap: 4K * / 2M * / 1G *",
    "handoff: leaves in kernel image: 4K * / 2M * / 1G *",
    "handoff: leaves in lower half: 4K 0 / 2M 0 / 1G 0",
    "handoff: bootloader-reclaimable memory: * KiB, reusable once every CPU has left Limine's code",
    "handoff: phases: parse * us, plan * us, build * us, switch * us, verify * us, efi * us, total * us",
    "selftest: ok   handoff: page-table frames equal the minimum for the page sizes",
    // Memory services and the other CPUs.
    "mm: vmemmap at 0x*: * KiB backed for * MiB of RAM (* 4 KiB pages, * 2 MiB pages, * page tables, from a reserve of * frames: * freed, * kept); the rest is backed as allocations reach it",
    "mm: frames: * MiB free (* MiB of boot-services memory released after SetVirtualAddressMap), * MiB allocated, * MiB reserved",
    "mm: vmalloc 0x*-0x*; heap of up to * MiB there, * KiB mapped",
    "cpu: IST stacks for #DF, NMI and #MC moved to vmalloc, with guard pages",
    "selftest: ok   mm: the bootstrap CPU's IST stacks have unmapped guard pages below them",
    "smp: * of * CPUs online, all on baton's page tables (CR3 0x*)",
    "mm: bootloader-reclaimable memory released: * KiB (* of * CPUs on baton's tables, * parked)",
    "selftest: ok   mm: the first 64 KiB are held back, never free",
    "mm: * sampled blocks of orders 0 to 13 (* KiB) allocated, checked and freed",
    "selftest: ok   mm: sampled allocations come only from free, allocatable RAM, and come back",
    "selftest: ok   mm: sampled frames are what the memory map says",
    "selftest: ok   mm: free memory costs nothing: the vmemmap is backed only where descriptors were written",
    "selftest: ok   mm: bootloader-reclaimable memory was released once every CPU had left Limine",
    "selftest: ok   mm: 2 MiB blocks are naturally aligned",
    "selftest: ok   mm: vmalloc memory works and its guard page faults at its address",
    "selftest: ok   mm: the heap serves Box, Vec and String, and grows",
    "selftest: ok   mm: W^X holds over vmalloc, the vmemmap and the heap",
    "selftest: * tests: * passed, 0 failed, * skipped",
];

pub fn all() -> Vec<Case> {
    vec![
        Case {
            name: "uefi-cd",
            about: "UEFI (OVMF) boot from the ISO: handover logged, self-tests pass",
            lines: &[
                "firmware UEFI (64-bit)",
                "boot: paging 4-level",
                "boot: command line \"test\"",
                "EFI descriptors (desc_size *, version 1)",
                "boot: EFI system table at physical 0x*",
                "limine:   leaves in HHDM and totals: not counted (loglevel=debug counts them)",
            ],
            ..BASE
        },
        Case {
            name: "bios-cd",
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
            about: "the GPT disk image as a USB stick (qemu-xhci + usb-storage) under OVMF",
            media: Media::UsbDisk,
            lines: &["firmware UEFI (64-bit)"],
            ..BASE
        },
        Case {
            name: "bios-disk",
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
            lines: &[
                "boot: paging 5-level",
                "boot: HHDM offset 0xff00000000000000",
            ],
            ..BASE
        },
        Case {
            name: "handoff-ovmf-128m",
            about: "handoff under OVMF with 128 MiB, -cpu qemu64 (no 1 GiB pages)",
            memory: "128M",
            cpu: Some("qemu64"),
            lines: &[
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
            ..BASE
        },
        Case {
            name: "handoff-ovmf-8g",
            about: "handoff under OVMF with 8 GiB (RAM above 4 GiB, unsorted EFI map)",
            memory: "8G",
            cpu: Some("qemu64"),
            lines: &["RAM * MiB up to 0x280000000"],
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
            lines: &["boot: memory map: * Limine entries, no EFI memory map"],
            ..BASE
        },
        Case {
            name: "ptdump",
            about: "ptdump prints the live tables in Linux's format with section markers",
            cmdline: "test ptdump",
            lines: &[
                "---[ User Space ]---",
                "---[ Low Kernel Mapping ]---",
                "0x0000000000000000-0xffff800000000000 * pgd",
                "0xffff888000000000-0x* RW * GLB NX pte",
                "---[ vmalloc() Area ]---",
                "---[ EFI Runtime Services ]---",
                "0xfffffffe*-0xfffffffe* RW * GLB NX pte",
                "0xfffffffe*-0xfffffffe* ro * GLB x  pte",
                "---[ High Kernel Mapping ]---",
                "0xffffffff80000000-0x* ro * GLB x  pte",
                "---[ Modules ]---",
                // Empty from the modules area up: the top PUD entry's run
                // splits at Linux's "End Modules" and "Fixmap Area", both
                // at MODULES_END.
                "0xffffffffc0000000-0xffffffffff000000        1008M * pud",
                "---[ End Modules ]---",
                "---[ Fixmap Area ]---",
                "0xffffffffff000000-0x0000000000000000          16M * pud",
            ],
            ..BASE
        },
        Case {
            name: "limine-tables-debug",
            about: "loglevel=debug counts every leaf of Limine's tables (info level walks only the \
                    lower half and the kernel image)",
            cmdline: "test loglevel=debug",
            lines: &[
                "DEBUG limine: page tables at entry: * frames, * leaves",
                "DEBUG limine:   leaves in HHDM: 4K * / 2M * / 1G *",
                "DEBUG limine:   leaves elsewhere: 0",
                "DEBUG handoff: Limine's tables vs baton's: * vs * page-table frames, * vs * leaves*",
            ],
            absent: &["leaves in HHDM and totals: not counted"],
            ..BASE
        },
        Case {
            name: "efi-runtime-shutdown",
            about: "OVMF -bios: SetVirtualAddressMap, GetTime, variables listed, set and read \
                    back, then ResetSystem powers off (no isa-debug-exit)",
            cmdline: "test poweroff",
            debug_exit: false,
            exit: Exit::Shutdown,
            lines: &[
                "efi: system table at 0x*: UEFI 2.*, firmware EDK II revision 0x*",
                "efi: memory attributes table: * entries",
                "efi: runtime 0x*-0x* RUNTIME_SERVICES_CODE WB -> 0xfffffffe*",
                "efi: window: * mappings, permissions per descriptor",
                "efi: window after SetVirtualAddressMap: * mappings, permissions from the memory \
                 attributes table",
                "efi: SetVirtualAddressMap(* descriptors) from a temporary address space * success",
                "efi: runtime services at 0xfffffffe*",
                "efi: live tables match the plan with the EFI window: * leaves in all, EFI window 4K *",
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
            name: "efi-reboot",
            about: "reboot resets through EFI ResetSystem(EfiResetCold)",
            cmdline: "reboot",
            debug_exit: false,
            exit: Exit::Reset,
            common: &[],
            lines: &["reboot: EFI ResetSystem(EfiResetCold)"],
            ..BASE
        },
        // Memory services and SMP.
        Case {
            name: "mm-128m",
            about: "memory services with 128 MiB and one CPU",
            memory: "128M",
            cpu: Some("qemu64"),
            lines: &["smp: 1 of 1 CPUs online*"],
            ..BASE
        },
        Case {
            name: "mm-8g-smp4",
            about: "memory services with 8 GiB and 4 CPUs: shootdowns reach them all",
            memory: "8G",
            smp: 4,
            lines: &[
                "smp: local APIC in *APIC mode at 0x*",
                "smp: CPU 1 (APIC *) online: CR3 0x*, stack top 0xffffc900*; protections: NXE on, WP on, *, global pages on",
                "smp: CPU 3 (APIC *) online: CR3 0x*, stack top 0xffffc900*; protections: NXE on, WP on, *, global pages on",
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "mm: 1 GiB block at 0x*",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
                "mm: Limine's memory released with 4 of 4 CPUs on baton's tables*",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
                "selftest: ok   mm: ioremap maps the local APIC's registers uncached",
                "selftest: ok   mm: ioremap maps the framebuffer write-combining and write-through",
            ],
            ..BASE
        },
        Case {
            name: "mm-64g-file",
            about: "64 GiB of sparse file-backed RAM: free memory costs nothing (a few hundred \
                    KiB of vmemmap), 1 GiB blocks, self-tests as fast as on 1 GiB",
            memory: "64G",
            memory_file: true,
            cpu: Some("max,phys-bits=48"),
            lines: &[
                "handoff: RAM 65535 MiB up to 0x*",
                "mm: vmemmap at 0x*: * KiB backed for 65535 MiB of RAM*",
                "mm: vmemmap: * pages backed (0 2 MiB), * page tables; an eager one: 131070 pages",
                "mm: 1 GiB block at 0x*",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
            ],
            ..BASE
        },
        Case {
            name: "mm-large-vmemmap-page",
            about: "256 MiB of reserved RAM (injected on a BIOS boot): initialisation writes a whole \
                    2 MiB of descriptors, backed with one 2 MiB page",
            firmware: Firmware::SeaBios,
            memory: "2G",
            cmdline: "test inject=reserved-256m",
            lines: &[
                "inject: the 256 MiB at 0x10000000 (usable) are ACPI NVS in Limine's map now",
                "mm: vmemmap at 0x*: * KiB backed for * MiB of RAM (* 4 KiB pages, 1 2 MiB pages, *",
                "mm: vmemmap: * pages backed (1 2 MiB), *",
            ],
            ..BASE
        },
        Case {
            name: "mm-1t-file",
            about: "a terabyte of sparse file-backed RAM boots and passes the self-tests",
            memory: "1T",
            memory_file: true,
            cpu: Some("max,phys-bits=48"),
            lines: &[
                "handoff: RAM 1048575 MiB up to 0x*",
                "mm: vmemmap at 0x*: * KiB backed for 1048575 MiB of RAM*",
                "mm: vmemmap: * pages backed (0 2 MiB), * page tables; an eager one: 2097150 pages",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
            ],
            ..BASE
        },
        Case {
            name: "smp4-5-level",
            about: "4 CPUs on 5-level tables (-cpu max)",
            cpu: Some("max"),
            smp: 4,
            lines: &[
                "boot: paging 5-level",
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "smp: CPU 2 (APIC *) online: *; protections: NXE on, WP on, SMEP on, SMAP on, UMIP on, global pages on",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
            ],
            ..BASE
        },
        Case {
            name: "smp4-bios",
            about: "4 CPUs and memory services on a BIOS boot",
            firmware: Firmware::SeaBios,
            smp: 4,
            lines: &[
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
            ],
            ..BASE
        },
        Case {
            name: "fault-vmalloc-stack-overflow",
            about: "overflowing a vmalloc stack: its guard page, a double fault, where it happened",
            cmdline: "test fault=vmalloc-stack-overflow",
            faults: true,
            lines: &[
                "fault: recursing on the vmalloc stack 0x*-0x*",
                "baton: EXCEPTION #DF double fault (vector 8) error code 0x0",
                "  on the double-fault IST stack (RSP 0x*); CR2 0x*",
                "baton: kernel stack overflow: the vmalloc stack 0x*-0x* ran into its guard page 0x*-0x* (RSP 0x*, RIP 0x*)",
                "  CR2 is in that guard page too",
            ],
            ..STOPS
        },
        // Hostile boot data: each injected defect is one error
        // line and a clean stop with the failure verdict.
        Case {
            name: "inject-overlap",
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
                "ERROR handoff: the new tables (read through Limine's HHDM; CR3 not switched): \
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
        // Deliberate faults: the exact diagnostic, then the
        // failure verdict; never a triple fault or a timeout.
        Case {
            name: "fault-null",
            about: "a null-pointer read: #PF in the empty lower half, with the walk of CR2",
            cmdline: "test fault=null",
            faults: true,
            lines: &[
                "fault: provoking NullRead",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x0",
                "  RIP 0xffffffff8* CS 0x8 RFLAGS 0x* RSP 0xffffffff8* SS 0x10",
                "  CR2 0x0000000000000000: not present, read, supervisor",
                "  page-table walk of CR2: PML4[0]=0x0 not present",
            ],
            ..STOPS
        },
        Case {
            name: "fault-null-smp4",
            about: "a null-pointer read with 3 other CPUs busy, interrupts off: an NMI \
                    stops each of them, then the report and a clean stop",
            cmdline: "test fault=null",
            smp: 4,
            faults: true,
            lines: &[
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "fault: 3 other CPUs spin with interrupts off",
                "fault: provoking NullRead",
                "smp: 3 of 3 other CPUs stopped (NMI)",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x0",
                "  CR2 0x0000000000000000: not present, read, supervisor",
            ],
            ..STOPS
        },
        Case {
            name: "fault-rodata",
            about: "a write to rodata: #PF, protection violation, the leaf is read-only",
            cmdline: "test fault=rodata",
            faults: true,
            lines: &[
                "fault: provoking RodataWrite",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x3",
                "  CR2 0xffffffff8*: protection violation, write, supervisor",
                "  page-table walk of CR2: PML4[511]=0x* PDPT[510]=0x* PD[0]=0x* PT[*]=0x* ( ro GLB NX ) -> 0x*",
            ],
            ..STOPS
        },
        Case {
            name: "fault-nx",
            about: "a jump into the physmap: #PF on instruction fetch, the leaf is NX",
            cmdline: "test fault=nx",
            faults: true,
            lines: &[
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x11",
                "  RIP 0xffff888* CS 0x8 *",
                "  CR2 0xffff888*: protection violation, read, supervisor, instruction fetch",
                "  page-table walk of CR2: PML4[273]=0x* ( RW * GLB NX ) -> 0x*",
            ],
            ..STOPS
        },
        Case {
            name: "fault-stack-overflow",
            about: "a kernel stack overflow: guard page, double fault on its IST stack",
            cmdline: "test fault=stack-overflow",
            faults: true,
            lines: &[
                "baton: EXCEPTION #DF double fault (vector 8) error code 0x0",
                "  on the double-fault IST stack (RSP 0x*); CR2 0x*",
                "baton: kernel stack overflow: the boot stack ran into its guard page 0x*-0x* (RSP 0x*, RIP 0x*)",
                "  CR2 is in that guard page too",
            ],
            ..STOPS
        },
        Case {
            name: "fault-heap-oom",
            about: "heap out of memory: the request and the heap's state reported, a clean stop",
            cmdline: "test fault=heap-oom",
            faults: true,
            lines: &[
                "fault: provoking HeapOutOfMemory",
                "ERROR heap: out of memory: 2147483648 bytes (align 1) requested; * KiB mapped, * KiB used, 1024 MiB reserved; growing failed: its 1024 MiB of virtual space are used up",
                "baton: PANIC at *: memory allocation of 2147483648 bytes failed",
            ],
            ..STOPS
        },
        Case {
            name: "fault-heap-frames",
            about: "the heap grows until physical memory runs out (128 MiB): the request, \
                    the heap's state and the cause reported, a clean stop",
            cmdline: "test fault=heap-frames",
            memory: "128M",
            faults: true,
            lines: &[
                "fault: provoking HeapOutOfFrames",
                "fault: the heap holds 32 MiB",
                "ERROR heap: out of memory: 1048576 bytes (align 1) requested; * KiB mapped, * KiB used, 1024 MiB reserved; growing failed: out of physical memory",
                "baton: PANIC at *: memory allocation of 1048576 bytes failed",
            ],
            absent: &[
                "vmalloc: unmapping",
                "vmalloc: freeing frame",
                "mapper: freeing",
            ],
            ..STOPS
        },
        Case {
            name: "fault-ud",
            about: "an invalid opcode: #UD with its RIP",
            cmdline: "test fault=ud",
            faults: true,
            lines: &[
                "fault: provoking InvalidOpcode",
                "baton: EXCEPTION #UD invalid opcode (vector 6) error code 0x0",
                "  RIP 0xffffffff8* CS 0x8 *",
            ],
            ..STOPS
        },
        // CPU protections.
        Case {
            name: "protections-max",
            about: "-cpu max: NXE, WP, SMEP, SMAP, UMIP and global pages all on",
            cpu: Some("max"),
            lines: &[
                "cpu: protections: NXE on, WP on, SMEP on, SMAP on, UMIP on, global pages on",
                "selftest: ok   cpu: every protection the CPU has is on",
            ],
            ..BASE
        },
        Case {
            name: "protections-qemu64",
            about: "-cpu qemu64: SMEP, SMAP and UMIP absent and said so; the rest on",
            cpu: Some("qemu64"),
            lines: &[
                "cpu: protections: NXE on, WP on, SMEP absent, SMAP absent, UMIP absent, global pages on",
                "selftest: ok   cpu: every protection the CPU has is on",
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
        Case {
            name: "gdb-break-kmain",
            about: "baton.gdb loads the kernel's symbols: `break kmain` stops there",
            needs: Needs::Gdb,
            gdb: true,
            common: &[],
            ..BASE
        },
    ]
}
