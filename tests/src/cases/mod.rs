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

mod boot;
mod cpu;
mod efi;
mod faults;
mod gdb;
mod hostile;
mod layout;
mod memtype;
mod mm;
mod reset;
mod screen;
mod secure_boot;

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

/// Every case, grouped by subject, in the order they run.
pub fn all() -> Vec<Case> {
    [
        boot::cases(),
        layout::cases(),
        efi::cases(),
        memtype::cases(),
        reset::cases(),
        secure_boot::cases(),
        mm::cases(),
        hostile::cases(),
        faults::cases(),
        cpu::cases(),
        screen::cases(),
        gdb::cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
