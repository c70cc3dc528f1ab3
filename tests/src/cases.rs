//! The boot tests: one QEMU boot per property.
//!
//! Each case names the image it boots (kernel build, medium, command line),
//! the machine, and what must hold afterwards: the exit status (from
//! isa-debug-exit: 33 pass, 35 fail), lines that must appear in the serial
//! log (`*` matches anything; `{physmap}`, `{vmalloc}`, `{vmemmap}`,
//! `{kernel-image}` an address inside that region as the boot's `layout:`
//! lines name it, `{physmap.base}` its first address: the bases move from
//! boot to boot), lines that must not, and lines that must differ from
//! one boot to the next.

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
    /// Unoptimised, as `make debug` builds it (cargo profile `gdb`).
    Gdb,
}

impl Kernel {
    /// The cargo feature selecting this build, if any.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Kernel::Default | Kernel::Gdb => None,
            Kernel::OmitHhdm => Some("test-omit-hhdm-request"),
            Kernel::BaseRevision1 => Some("test-base-revision-1"),
        }
    }

    /// The cargo profile of this build.
    pub fn profile(self) -> &'static str {
        match self {
            Kernel::Gdb => "gdb",
            _ => "release",
        }
    }
}

/// A GDB session a case runs (with baton.gdb and its helpers) instead of
/// booting to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gdb {
    /// `break kmain` stops in kmain: the symbol of the stop address.
    BreakKmain,
    /// `break kmain` stops in kmain's own source, not in an inlined callee.
    KmainSourceLine,
    /// Through the handoff with the helpers: stops on each side of the
    /// CR3 switch by name, translates a physmap address with baton-walk,
    /// dumps the tables as the kernel's ptdump does, shows the memory map.
    Handoff,
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
    /// OVMF with Secure Boot enforced (Debian's snakeoil build: its code
    /// needs SMM, and its variable store enrols the snakeoil test key as PK,
    /// KEK and db), as pflash with a fresh copy of the variable store.
    SecureBootOvmf,
}

/// What the disk image's boot chain is signed with (Secure Boot cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signing {
    /// Built as `make hdd` builds it: nothing signed, no hashes.
    Off,
    /// Built as `make hdd SECURE_BOOT=1` builds it, with the snakeoil key.
    Signed,
    /// Signed, then the kernel file grows by one byte: its BLAKE2B no
    /// longer matches `limine.conf` (an ELF loader ignores trailing bytes,
    /// so only the hash tells).
    TamperedKernel,
    /// Signed, then a comment line appended to `limine.conf` (harmless to
    /// its parser): its BLAKE2B no longer matches the one enrolled in Limine.
    TamperedConfig,
    /// Signed, then the signature removed from Limine's executable: the
    /// same Limine, config hash enrolled, unsigned.
    UnsignedLimine,
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
    /// The firmware reset the machine (status 0, as `-no-reboot` turns a
    /// reset into an exit), through EFI ResetSystem(EfiResetCold): no
    /// shutdown request and no keyboard-controller reset in QEMU's
    /// trace, and never a triple fault.
    Reset,
    /// baton reset the machine through the keyboard controller (0xfe to
    /// port 0x64), as it does without runtime services: QEMU's trace
    /// shows the command.
    KbcReset,
    /// The guest halted for good (status 0 once the runner, having read
    /// the screen, ends QEMU): a case without isa-debug-exit whose kernel
    /// stops with its verdict or report on every console.
    Halted,
    /// The runner stopped QEMU: a line matched the case's `stop_at`, or its
    /// `deadline` passed (a boot chain that refuses waits for a key).
    Stopped,
}

impl Exit {
    pub fn status(self) -> i32 {
        match self {
            Exit::Pass => 33,
            Exit::Fail => 35,
            Exit::Shutdown | Exit::Reset | Exit::KbcReset | Exit::Halted => 0,
            // Never an exit status: a QEMU that exits on its own fails.
            Exit::Stopped => -1,
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
    /// Secure Boot: sbsigntool, openssl, Debian's snakeoil OVMF and key,
    /// and the release's `limine` host utility (`enroll-config`).
    SecureBoot,
}

/// One boot and what must hold about it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub about: &'static str,
    pub kernel: Kernel,
    pub media: Media,
    /// The command line; `\xHH` stands for the byte HH. The runner puts
    /// `loglevel=debug` before it (see `default_log`).
    pub cmdline: &'static str,
    /// Boot with the command line as it is, at the default log level,
    /// rather than with `loglevel=debug` before it.
    pub default_log: bool,
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
    /// Patterns that must match consecutive lines, in order (a call
    /// trace).
    pub block: &'static [&'static str],
    /// Self-test prefixes (`smp:`, `efi:`) the case is there to exercise:
    /// each must have a test that passed and none skipped.
    pub exercises: &'static [&'static str],
    /// Patterns each boot must match with a line no other boot of the case
    /// prints (the randomised bases), timestamps aside.
    pub varies: &'static [&'static str],
    pub needs: Needs,
    /// Instead of booting to the end: a GDB session.
    pub gdb: Option<Gdb>,
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
    /// Read the screen once the serial log ends with a line ending in this
    /// (and every CPU halted), and compare it with the log replayed on the
    /// kernel's console: pixel for pixel.
    pub screen: Option<&'static str>,
    /// Also run against every other Limine release installed (see
    /// `limine.rs`), each result reported with its release.
    pub across_releases: bool,
    /// Whether the kernel runs at all (it does not where the boot chain
    /// refuses it): only then must its log name the release.
    pub kernel_starts: bool,
    /// How the disk image's boot chain is signed.
    pub signing: Signing,
    /// The runner stops QEMU once a serial line matches one of these.
    pub stop_at: &'static [&'static str],
    /// The runner stops QEMU after this many seconds (the log is judged
    /// as usual); without it the timeout applies (a failure).
    pub deadline: Option<u64>,
}

const BASE: Case = Case {
    name: "",
    about: "",
    kernel: Kernel::Default,
    media: Media::Cdrom,
    cmdline: "test",
    default_log: false,
    firmware: Firmware::Ovmf,
    machine: "q35",
    cpu: None,
    memory: "1G",
    memory_file: false,
    exit: Exit::Pass,
    common: HANDOVER,
    lines: &[],
    absent: &[],
    block: &[],
    exercises: &[],
    varies: &[],
    needs: Needs::Nothing,
    gdb: None,
    debug_exit: true,
    boots: 1,
    faults: false,
    smp: 1,
    screen: None,
    across_releases: false,
    kernel_starts: true,
    signing: Signing::Off,
    stop_at: &[],
    deadline: None,
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
    "boot: kernel at physical 0x*, virtual 0xffffffff*",
    "boot: paging *-level",
    "boot: command line \"*\"",
    "boot: memory map: * Limine entries*",
    // What Limine's HHDM maps, checked against the base revision.
    "limine: HHDM maps these Limine entries: *",
    "limine: base revision * promises * in the HHDM",
    "selftest: ok   boot: Limine's HHDM mapped every entry the base revision promises that baton relies on",
    // The handoff: the switch, the checks of the live tables and
    // their statistics. Limine maps nothing in the lower half under every
    // base revision baton accepts (2 to 5; only revision 0 had an identity
    // map), on every machine the cases boot.
    "limine:   nothing mapped in the lower half",
    "handoff: memory map: * descriptors and * Limine entries -> * regions",
    // The layout in effect: every base named once; the tables agree.
    "layout: physmap 0x*-0x* (*)",
    "layout: vmalloc 0x*-0x* (*)",
    "layout: vmemmap 0x*-0x* (*)",
    "layout: EFI runtime 0xffffffef00000000-0xffffffff00000000 (64 GiB, fixed)",
    "layout: kernel image 0xffffffff*-0xffffffff* (*)",
    "kaslr: read back from the live tables: physmap base {physmap.base}",
    "selftest: ok   kaslr: the live tables map RAM at the physmap base in effect",
    "selftest: ok   kaslr: every live mapping lies inside a region of the layout in effect",
    "handoff: plan: * mappings; physmap * MiB with pages up to *",
    "handoff: memory-type cuts: *",
    "handoff: built * page-table frames at 0x*",
    "handoff: new tables verified before the switch through Limine's HHDM: * leaves, * MiB mapped",
    "handoff:   lower half empty (256 top-level entries not present); * RAM samples translate to themselves, * non-RAM samples unmapped",
    "handoff: CR3 = 0x*: running on baton's *-level tables",
    "handoff: live tables match the plan: * leaves, * MiB mapped",
    "handoff: lower half empty; physmap: * RAM samples translate to themselves, * non-RAM samples unmapped",
    "x86/mm: Checked W+X mappings: passed, no W+X pages found.",
    "handoff: page-table frames: * (PML5 *, PML4 *, PDPT *, PD *, PT *); minimum for these page sizes: *",
    "handoff: leaves in physmap: 4K * / 2M * / 1G *",
    "handoff: leaves in kernel image: 4K * / 2M * / 1G *",
    "handoff: bootloader-reclaimable memory: * KiB, reusable once every CPU has left Limine's code",
    "handoff: phases: parse * us, plan * us, build * us, switch * us, verify * us, efi * us, total * us",
    "selftest: ok   handoff: page-table frames equal the minimum for the page sizes",
    "selftest: ok   efi: the kernel's tables map nothing in the EFI window",
    // Memory services and the other CPUs.
    "mm: vmemmap: * KiB backed for * MiB of RAM (* 4K and * 2M pages, * tables; reserve * frames, * freed, * kept)",
    "mm: frames: * MiB free (* MiB of boot-services memory released after SetVirtualAddressMap), * MiB allocated, * MiB reserved",
    "mm: vmalloc: heap of up to * MiB there, * KiB mapped",
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
    "selftest: ok   symbols: functions are named from the kernel's ELF file",
    "selftest: * tests: * passed, 0 failed, * skipped",
];

/// The last line of a test run without isa-debug-exit: the kernel halts.
const NO_DEBUG_EXIT: &str = "selftest: no isa-debug-exit device to report the verdict; halting";

/// What a boot with the screen console logs about it.
const SCREEN_LINES: [&str; 6] = [
    "console: the log goes to COM1 and the screen, by default",
    "console: screen *x*, pitch *, 32 bpp, red 8@16 green 8@8 blue 8@0",
    "console: Noto Sans Mono 16 (7x16 cells): *x* text, scrolling * rows at a time",
    "console: drawing through Limine's HHDM at 0x*, write-combining",
    // The fixmap's start, or where a relocated image took the fixmap's
    // place, the image region's.
    "console: since the CR3 switch, through baton's window at 0xffffffff*, write-combining (baton's PAT)",
    "selftest: ok   console: the screen is drawn through baton's WC window, never the physmap",
];

pub fn all() -> Vec<Case> {
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
            absent: &["leaves in HHDM and totals: not counted"],
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
            lines: &["boot: memory map: * Limine entries, no EFI memory map"],
            ..BASE
        },
        Case {
            name: "ptdump",
            about: "ptdump prints the live tables in Linux's format with section markers, and the \
                    EFI address space after them, the window's pages in it only and never global",
            cmdline: "test ptdump",
            lines: &[
                "---[ User Space ]---",
                "---[ Low Kernel Mapping ]---",
                "0x0000000000000000-0xffff800000000000 * pgd",
                "{physmap.base}-0x* RW * GLB NX pte",
                "---[ vmalloc() Area ]---",
                "---[ EFI Runtime Services ]---",
                // The kernel's tables: nothing from the window to the image.
                "0xffffffef00000000-0xffffffff80000000          66G * pud",
                "---[ EFI address space (root 0x*) ]---",
                "0xfffffffe*-0xfffffffe* RW                     NX pte",
                "0xfffffffe*-0xfffffffe* ro                     x  pte",
                "---[ High Kernel Mapping ]---",
                "{kernel-image.base}-0x* ro * GLB x  pte",
                // Limine moved the image: it may lie anywhere in the top
                // 2 GiB, so the modules area and fixmap are empty at the
                // last page (the nokaslr case checks Linux's table).
                "---[ Modules ]---",
                "---[ End Modules ]---",
                "---[ Fixmap Area ]---",
            ],
            absent: &["0xfffffffe*GLB*"],
            ..BASE
        },
        Case {
            name: "nokaslr-4-level",
            about: "nokaslr: Linux's fixed 4-level bases, the image at its link address, \
                    Limine's HHDM in the guard hole; ptdump shows Linux's table",
            cmdline: "test nokaslr ptdump",
            lines: &[
                "boot: HHDM offset 0xffff800000000000",
                "boot: kernel at physical 0x*, virtual 0xffffffff80000000",
                "boot: paging 4-level",
                "kaslr: off (nokaslr on the command line): Linux's fixed bases",
                "layout: physmap 0xffff888000000000-0xffffc88000000000 (64 TiB, fixed)",
                "layout: vmalloc 0xffffc90000000000-0xffffe90000000000 (32 TiB, fixed)",
                "layout: vmemmap 0xffffea0000000000-0xffffeb0000000000 (1 TiB, fixed)",
                "layout: kernel image 0xffffffff80000000-0x* (at its link address)",
                "kaslr: read back from the live tables: physmap base 0xffff888000000000",
                "0xffff888000000000-0x* RW * GLB NX pte",
                "0xffffffff80000000-0x* ro * GLB x  pte",
                "---[ Modules ]---",
                // The modules area is empty; the fixmap holds the screen
                // console's framebuffer window, write-combining (PWT
                // selects WC in baton's PAT), read-write, never executable:
                // a 2 MiB page, then 4 KiB pages to the end of QEMU's
                // 1280x800 framebuffer.
                "0xffffffffa0000000-0xffffffffff000000        1520M * pmd",
                "---[ End Modules ]---",
                "---[ Fixmap Area ]---",
                "0xffffffffff000000-0xffffffffff200000           2M     RW PWT     PSE     GLB NX pmd",
                "0xffffffffff200000-0xffffffffff3e8000        1952K     RW PWT             GLB NX pte",
            ],
            absent: &[
                "kaslr: seed from",
                "Limine's KASLR",
                "WARN  kaslr:",
                "0xfffffffe*GLB*",
            ],
            ..BASE
        },
        Case {
            name: "nokaslr-5-level",
            about: "nokaslr under 5-level paging (-cpu max): Linux's fixed 5-level bases",
            cpu: Some("max"),
            cmdline: "test nokaslr",
            lines: &[
                "boot: HHDM offset 0xff00000000000000",
                "boot: kernel at physical 0x*, virtual 0xffffffff80000000",
                "boot: paging 5-level",
                "kaslr: off (nokaslr on the command line): Linux's fixed bases",
                "layout: physmap 0xff11000000000000-0xff91000000000000 (32 PiB, fixed)",
                "layout: vmalloc 0xffa0000000000000-0xffd2000000000000 (12800 TiB, fixed)",
                "layout: vmemmap 0xffd4000000000000-0xffd6000000000000 (512 TiB, fixed)",
                "kaslr: read back from the live tables: physmap base 0xff11000000000000",
            ],
            absent: &["kaslr: seed from", "Limine's KASLR", "WARN  kaslr:"],
            ..BASE
        },
        Case {
            name: "kaslr-two-boots",
            about: "two boots of one image (-cpu max: 5-level, RDRAND) put the physmap, \
                    vmalloc, the vmemmap and the image at different bases",
            cpu: Some("max"),
            boots: 2,
            lines: &[
                "boot: paging 5-level",
                "kaslr: seed from RDRAND, TSC, Limine's HHDM base, Limine's kernel slide, boot time",
                "layout: physmap 0x*-0x* (11 TiB, base 1 of *)",
                "layout: kernel image 0x*-0x* (Limine's KASLR, slide 0x*)",
            ],
            // Each pair of boots shares a physmap base with probability
            // about 1 in 13 million (its 5-level slots).
            varies: &[
                "layout: physmap 0x*",
                "layout: vmalloc 0x*",
                "layout: vmemmap 0x*",
                "kaslr: read back from the live tables: physmap base 0x*",
            ],
            ..BASE
        },
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
        // Memory services and SMP.
        Case {
            name: "mm-128m",
            about: "memory services with 128 MiB and one CPU",
            memory: "128M",
            cpu: Some("qemu64"),
            lines: &[
                "handoff: RAM 127 MiB up to 0x8000000: *",
                "smp: 1 of 1 CPUs online*",
            ],
            ..BASE
        },
        Case {
            name: "mm-8g-smp4",
            exercises: &["smp:", "mm:"],
            about: "memory services with 8 GiB and 4 CPUs: shootdowns reach them all",
            memory: "8G",
            smp: 4,
            // The stacks lie in vmalloc space after the heap's reservation,
            // which grows with RAM.
            lines: &[
                "smp: local APIC in *APIC mode at 0x*",
                "smp: CPU 1 (APIC *) online: CR3 0x*, stack top {vmalloc}",
                "smp: CPU 1 protections: NXE on, WP on, *, global pages on",
                "smp: CPU 3 (APIC *) online: CR3 0x*, stack top {vmalloc}",
                "smp: CPU 3 protections: NXE on, WP on, *, global pages on",
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "mm: 1 GiB block at 0x*",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
                "mm: Limine's memory released with 4 of 4 CPUs on baton's tables*",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a multi-page unmap leaves no page of it readable on any CPU",
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
                "mm: vmemmap: * KiB backed for 65535 MiB of RAM*",
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
                "mm: vmemmap: * KiB backed for * MiB of RAM (* 4K and 1 2M pages, *",
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
                "mm: vmemmap: * KiB backed for 1048575 MiB of RAM*",
                "mm: vmemmap: * pages backed (0 2 MiB), * page tables; an eager one: 2097150 pages",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
            ],
            ..BASE
        },
        Case {
            name: "smp4-5-level",
            exercises: &["smp:"],
            across_releases: true,
            about: "4 CPUs on 5-level tables (-cpu max)",
            cpu: Some("max"),
            smp: 4,
            lines: &[
                "boot: paging 5-level",
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "smp: CPU 2 protections: NXE on, WP on, SMEP on, SMAP on, UMIP on, global pages on",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a multi-page unmap leaves no page of it readable on any CPU",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
            ],
            ..BASE
        },
        Case {
            name: "smp4-bios",
            exercises: &["smp:"],
            about: "4 CPUs and memory services on a BIOS boot",
            firmware: Firmware::SeaBios,
            smp: 4,
            lines: &[
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a multi-page unmap leaves no page of it readable on any CPU",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
            ],
            ..BASE
        },
        Case {
            name: "fault-vmalloc-stack-overflow",
            about: "overflowing a vmalloc stack: its guard page, a double fault, where it happened, \
                    a call trace from the vmalloc stack back to the boot stack",
            cmdline: "test fault=vmalloc-stack-overflow",
            faults: true,
            block: &[
                " ... the line above * more times",
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
            ],
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
        // Deliberate faults: the exact diagnostic, then the
        // failure verdict; never a triple fault or a timeout.
        Case {
            name: "fault-null",
            across_releases: true,
            about: "a null-pointer read: #PF in the empty lower half, with the walk of CR2, \
                    the faulting function and the call trace through it",
            cmdline: "test fault=null",
            faults: true,
            lines: &[
                "fault: provoking NullRead",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x0",
                "  RIP {kernel-image} CS 0x8 RFLAGS 0x* RSP {kernel-image} SS 0x10",
                "  RIP: 0008:baton::faults::provoke+0x*/0x*",
                "  CR2 0x0000000000000000: not present, read, supervisor",
                "  page-table walk of CR2: PML4[0]=0x0 not present",
            ],
            block: &[
                "Call Trace:",
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
                " _start+0x*/0x*",
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
                "  CR2 {kernel-image}: protection violation, write, supervisor",
                "  page-table walk of CR2: PML4[511]=0x* PDPT[*]=0x* PD[*]=0x* PT[*]=0x* ( ro GLB NX ) -> 0x*",
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
                "  RIP {physmap} CS 0x8 *",
                "  CR2 {physmap}: protection violation, read, supervisor, instruction fetch",
                "  page-table walk of CR2: PML4[*]=0x* ( RW * GLB NX ) -> 0x*",
            ],
            // No function holds RIP: the return address on the stack
            // names the caller.
            block: &[
                "Call Trace:",
                " {physmap}",
                " ? baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
            ],
            ..STOPS
        },
        Case {
            name: "fault-stack-overflow",
            about: "a kernel stack overflow: guard page, double fault on its IST stack, the \
                    recursion in the call trace as one line",
            cmdline: "test fault=stack-overflow",
            faults: true,
            block: &[
                "Call Trace:",
                " baton::faults::recurse+0x*/0x*",
                " baton::faults::recurse+0x*/0x*",
                " ... the line above * more times",
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
                " _start+0x*/0x*",
            ],
            lines: &[
                "  RIP: 0008:baton::faults::recurse+0x*/0x*",
                "baton: EXCEPTION #DF double fault (vector 8) error code 0x0",
                "  on the double-fault IST stack (RSP 0x*); CR2 0x*",
                "baton: kernel stack overflow: the boot stack ran into its guard page 0x*-0x* (RSP 0x*, RIP 0x*)",
                "  CR2 is in that guard page too",
            ],
            ..STOPS
        },
        Case {
            name: "fault-heap-oom",
            about: "heap out of memory: the request and the heap's state reported, the panic's \
                    call trace, a clean stop",
            cmdline: "test fault=heap-oom",
            faults: true,
            block: &[
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
                " _start+0x*/0x*",
            ],
            lines: &[
                "fault: provoking HeapOutOfMemory",
                "ERROR heap: out of memory: 4294967296 bytes (align 1) requested; growing failed: its 2048 MiB of virtual space are used up",
                "ERROR heap:   * KiB mapped, * KiB used, 2048 MiB reserved",
                "baton: PANIC at *: memory allocation of 4294967296 bytes failed",
                "Call Trace:",
                " __rustc::rust_begin_unwind+0x*/0x*",
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
                "ERROR heap: out of memory: 1048576 bytes (align 1) requested; growing failed: out of physical memory",
                "ERROR heap:   * KiB mapped, * KiB used, 2048 MiB reserved",
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
            name: "fault-heap-frames-4g",
            about: "the heap grows until physical memory runs out on a 4 GiB guest, past 1 GiB: \
                    its reservation is larger than RAM",
            cmdline: "test fault=heap-frames",
            memory: "4G",
            faults: true,
            lines: &[
                "mm: vmalloc: heap of up to 5120 MiB there, * KiB mapped",
                "fault: the heap holds 3072 MiB",
                "ERROR heap: out of memory: 1048576 bytes (align 1) requested; growing failed: out of physical memory",
                "ERROR heap:   * KiB mapped, * KiB used, 5120 MiB reserved",
                "baton: PANIC at *: memory allocation of 1048576 bytes failed",
            ],
            absent: &["virtual space are used up"],
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
                "  RIP {kernel-image} CS 0x8 *",
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
        // The screen console: the screen read back at the end
        // and compared with the serial log replayed on the same console.
        Case {
            name: "screen-uefi",
            exercises: &["console:"],
            about: "the whole log on the screen under OVMF: the last lines of a test run, \
                    pixel for pixel, after scrolling",
            debug_exit: false,
            exit: Exit::Halted,
            screen: Some(NO_DEBUG_EXIT),
            lines: &SCREEN_LINES,
            ..BASE
        },
        Case {
            name: "screen-bios",
            about: "the whole log on the screen under SeaBIOS (Limine's VBE framebuffer)",
            firmware: Firmware::SeaBios,
            debug_exit: false,
            exit: Exit::Halted,
            screen: Some(NO_DEBUG_EXIT),
            lines: &SCREEN_LINES,
            ..BASE
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
