//! The Limine protocol: baton's requests, and the copy of everything baton
//! keeps from the responses (in test runs, damaged as `inject=` asks).
//!
//! The responses live in bootloader-reclaimable memory reached through
//! Limine's HHDM, which does not exist in baton's own page tables. So
//! `collect` copies what is needed into the kernel image (`.bss`) once,
//! early; nothing reads a response after that.

use core::ffi::{CStr, c_char};

use handoff::Levels;
use handoff::memmap::{LimineEntry, MAX_LIMINE_ENTRIES};
use handoff::revision::{self, BootPointer, InEffect, RevisionError};
use limine::BaseRevision;
use limine::firmware_type::FirmwareType;
use limine::paging;
use limine::request::{
    BootloaderInfoRequest, DateAtBootRequest, EfiMemoryMapRequest, EfiSystemTableRequest,
    ExecutableAddressRequest, ExecutableCmdlineRequest, ExecutableFileRequest, FirmwareTypeRequest,
    FramebufferRequest, MemoryMapRequest, MpRequest, PagingModeRequest, RequestsEndMarker,
    RequestsStartMarker,
};
use x86_64::registers::control::{Cr4, Cr4Flags};

use crate::fixed::FixedStr;

mod damage;
pub mod tests;

#[cfg(not(feature = "test-omit-hhdm-request"))]
use limine::request::HhdmRequest;

// The requests, between Limine's start and end markers (linker.ld keeps
// them together in `.limine_requests`).

#[used]
#[unsafe(link_section = ".limine_requests_start")]
static REQUESTS_START: RequestsStartMarker = RequestsStartMarker::new();

/// The base revision this build asks for: baton's newest, or 1 in the test
/// build that checks an unusable revision is refused.
const REQUESTED_REVISION: u64 = if cfg!(feature = "test-base-revision-1") {
    1
} else {
    revision::REQUESTED
};

#[used]
#[unsafe(link_section = ".limine_requests")]
static BASE_REVISION: BaseRevision = BaseRevision::with_revision(REQUESTED_REVISION);

#[used]
#[unsafe(link_section = ".limine_requests")]
static BOOTLOADER_INFO: BootloaderInfoRequest = BootloaderInfoRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static FIRMWARE_TYPE: FirmwareTypeRequest = FirmwareTypeRequest::new();

#[cfg(not(feature = "test-omit-hhdm-request"))]
#[used]
#[unsafe(link_section = ".limine_requests")]
static HHDM: HhdmRequest = HhdmRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static MEMMAP: MemoryMapRequest = MemoryMapRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static EXECUTABLE_ADDRESS: ExecutableAddressRequest = ExecutableAddressRequest::new();

/// The command line: newer Limine answers this request...
#[used]
#[unsafe(link_section = ".limine_requests")]
static CMDLINE: ExecutableCmdlineRequest = ExecutableCmdlineRequest::new();

/// ...Limine 8 passes it as the kernel file's string.
#[used]
#[unsafe(link_section = ".limine_requests")]
static EXECUTABLE_FILE: ExecutableFileRequest = ExecutableFileRequest::new();

/// 5-level paging when the CPU has it, else 4-level: baton builds either.
#[used]
#[unsafe(link_section = ".limine_requests")]
static PAGING_MODE: PagingModeRequest = PagingModeRequest::new()
    .with_mode(paging::Mode::FIVE_LEVEL)
    .with_max_mode(paging::Mode::FIVE_LEVEL)
    .with_min_mode(paging::Mode::FOUR_LEVEL);

#[used]
#[unsafe(link_section = ".limine_requests")]
static EFI_MEMMAP: EfiMemoryMapRequest = EfiMemoryMapRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static EFI_SYSTEM_TABLE: EfiSystemTableRequest = EfiSystemTableRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static FRAMEBUFFER: FramebufferRequest = FramebufferRequest::new();

/// The RTC's time at boot: one of the words the layout's seed mixes.
#[used]
#[unsafe(link_section = ".limine_requests")]
static DATE_AT_BOOT: DateAtBootRequest = DateAtBootRequest::new();

/// The other CPUs: Limine starts them and parks them in its own code until
/// baton gives each an address to jump to.
#[used]
#[unsafe(link_section = ".limine_requests")]
static MP: MpRequest = MpRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests_end")]
static REQUESTS_END: RequestsEndMarker = RequestsEndMarker::new();

/// Most bytes of EFI memory map baton copies (2048 descriptors of 64 bytes).
pub const MAX_EFI_MAP_BYTES: usize = 128 * 1024;

/// The firmware Limine booted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi32,
    Uefi64,
    Other,
}

impl Firmware {
    pub fn is_uefi(self) -> bool {
        matches!(self, Firmware::Uefi32 | Firmware::Uefi64)
    }

    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi32 => "UEFI (32-bit)",
            Firmware::Uefi64 => "UEFI (64-bit)",
            Firmware::Other => "unknown",
        }
    }
}

/// The EFI memory map as Limine passed it: metadata and a byte copy.
#[derive(Debug, Clone, Copy)]
pub struct EfiMapInfo {
    pub size: usize,
    pub desc_size: usize,
    pub desc_version: u32,
}

/// The raw maps, kept in `.bss`.
pub struct RawMaps {
    pub limine: [LimineEntry; MAX_LIMINE_ENTRIES],
    pub limine_len: usize,
    pub efi: [u8; MAX_EFI_MAP_BYTES],
    pub efi_info: Option<EfiMapInfo>,
}

impl RawMaps {
    const fn new() -> Self {
        Self {
            limine: [LimineEntry::EMPTY; MAX_LIMINE_ENTRIES],
            limine_len: 0,
            efi: [0; MAX_EFI_MAP_BYTES],
            efi_info: None,
        }
    }

    pub fn limine(&self) -> &[LimineEntry] {
        &self.limine[..self.limine_len]
    }

    pub fn efi(&self) -> Option<(&[u8], EfiMapInfo)> {
        self.efi_info.map(|info| (&self.efi[..info.size], info))
    }
}

/// The copies of both memory maps.
pub static RAW_MAPS: spin::Mutex<RawMaps> = spin::Mutex::new(RawMaps::new());

/// The first framebuffer, as Limine set it up.
#[derive(Debug, Clone, Copy)]
pub struct Framebuffer {
    pub phys: u64,
    pub width: u64,
    pub height: u64,
    pub pitch: u64,
    pub bpp: u16,
    /// Whether Limine's memory model is RGB (the only one it defines).
    pub rgb: bool,
    /// Red, green and blue: each mask's size and shift in bits.
    pub masks: [(u8, u8); 3],
}

/// The first framebuffer, where Limine's HHDM maps it, and how many
/// Limine reported: for the screen console, which starts before
/// [`collect`] and draws through the HHDM until the CR3 switch.
#[derive(Debug, Clone, Copy)]
pub struct EarlyFramebuffer {
    pub fb: Framebuffer,
    /// The HHDM address of its first pixel.
    pub virt: u64,
    /// Framebuffers in Limine's response (the console uses the first).
    pub count: usize,
}

/// Limine's first framebuffer, or `None` without one (or without the
/// HHDM, which its address needs).
pub fn first_framebuffer() -> Option<EarlyFramebuffer> {
    let hhdm = hhdm_offset()?;
    let response = FRAMEBUFFER.get_response()?;
    let fb = response.framebuffers().next()?;
    let virt = fb.addr() as u64;
    Some(EarlyFramebuffer {
        fb: Framebuffer {
            phys: virt.checked_sub(hhdm)?,
            width: fb.width(),
            height: fb.height(),
            pitch: fb.pitch(),
            bpp: fb.bpp(),
            rgb: fb.memory_model() == limine::framebuffer::MemoryModel::RGB,
            masks: [
                (fb.red_mask_size(), fb.red_mask_shift()),
                (fb.green_mask_size(), fb.green_mask_shift()),
                (fb.blue_mask_size(), fb.blue_mask_shift()),
            ],
        },
        virt,
        count: response.framebuffers().count(),
    })
}

/// Limine's MP response, as baton keeps it: where its per-CPU
/// structures are listed (bootloader memory, reached through the physmap
/// after the switch, until it is released).
#[derive(Debug, Clone, Copy)]
pub struct MpInfo {
    pub bsp_apic_id: u32,
    /// CPUs, the bootstrap processor included.
    pub count: usize,
    /// Physical address of the array of `count` pointers (HHDM addresses)
    /// to each CPU's `limine_smp_info`.
    pub cpus_phys: u64,
}

/// baton's own ELF file, as Limine loaded it (for its symbol table).
#[derive(Debug, Clone, Copy)]
pub struct KernelFile {
    pub phys: u64,
    pub size: u64,
}

/// Everything baton keeps from Limine besides the memory maps.
#[derive(Debug, Clone, Copy)]
pub struct BootInfo {
    pub bootloader_name: FixedStr<64>,
    pub bootloader_version: FixedStr<64>,
    pub firmware: Firmware,
    pub revision: InEffect,
    pub hhdm_offset: u64,
    pub kernel_phys: u64,
    pub kernel_virt: u64,
    /// The paging mode in effect, from CR4.LA57.
    pub levels: Levels,
    pub cmdline: FixedStr<2048>,
    /// Physical address of the EFI system table, on UEFI boots.
    pub efi_system_table: Option<u64>,
    /// Limine's MP response, when it answered the request.
    pub mp: Option<MpInfo>,
    pub framebuffer: Option<Framebuffer>,
    /// The kernel's ELF file in memory, when Limine gave it.
    pub kernel_file: Option<KernelFile>,
    /// The RTC's time at boot in seconds since 1970, when Limine gave it.
    pub boot_time: Option<u64>,
}

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// What baton kept from Limine. Panics before [`collect`].
pub fn info() -> &'static BootInfo {
    BOOT_INFO.get().expect("boot info not collected yet")
}

/// Why Limine's handover is unusable.
#[derive(Debug, Clone, Copy)]
pub enum BootError {
    /// A response baton cannot boot without.
    Missing(&'static str),
    /// The base revision in effect is unusable.
    Revision(RevisionError),
    /// The paging mode response contradicts CR4.
    PagingMismatch { response: Levels, cr4: Levels },
    /// More Limine memory-map entries than baton holds.
    TooManyLimineEntries(usize),
    /// The EFI memory map does not fit baton's copy.
    EfiMapTooLarge { size: u64, desc_size: u64 },
    /// An HHDM pointer below the HHDM.
    BadPointer(&'static str, u64),
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootError::Missing(what) => write!(f, "missing Limine response: {what}"),
            BootError::Revision(e) => write!(f, "unusable Limine base revision: {e}"),
            BootError::PagingMismatch { response, cr4 } => write!(
                f,
                "Limine reports {response:?}-level paging but CR4.LA57 says {cr4:?}-level"
            ),
            BootError::TooManyLimineEntries(n) => write!(
                f,
                "Limine memory map has {n} entries; baton holds at most {MAX_LIMINE_ENTRIES}"
            ),
            BootError::EfiMapTooLarge { size, desc_size } => write!(
                f,
                "EFI memory map of {size} bytes (desc_size {desc_size}) exceeds baton's \
                 {MAX_EFI_MAP_BYTES}-byte copy"
            ),
            BootError::BadPointer(what, value) => {
                write!(f, "{what} pointer {value:#x} is not an HHDM address")
            }
        }
    }
}

/// The command line, read before anything else so that `test` and
/// `loglevel=` apply to the rest of the boot. Empty when Limine gave none.
/// Bytes that are not UTF-8 become U+FFFD, so the options around them
/// still apply; the offset of the first such byte comes with the text.
pub fn cmdline() -> (FixedStr<2048>, Option<usize>) {
    let text = match (CMDLINE.get_response(), EXECUTABLE_FILE.get_response()) {
        (Some(r), _) => r.cmdline(),
        (None, Some(f)) => f.file().string(),
        (None, None) => c"",
    };
    let mut out = FixedStr::new();
    let bad = handoff::cmdline::decode_lossy(text.to_bytes(), &mut out);
    (out, bad)
}

/// Reads a C string from bootloader memory, tolerating bad UTF-8.
fn c_str<const N: usize>(ptr: *const c_char) -> FixedStr<N> {
    if ptr.is_null() {
        return FixedStr::from_str_truncating("?");
    }
    // SAFETY: Limine hands over NUL-terminated strings in bootloader
    // memory, mapped by its HHDM until baton's own tables are loaded.
    let s = unsafe { CStr::from_ptr(ptr) };
    FixedStr::from_str_truncating(s.to_str().unwrap_or("(not UTF-8)"))
}

/// The bootloader's name and version. The `limine` crate's accessors
/// panic on bad UTF-8, so the response is read through its C layout.
fn bootloader_info() -> Option<(FixedStr<64>, FixedStr<64>)> {
    #[repr(C)]
    struct Raw {
        revision: u64,
        name: *const c_char,
        version: *const c_char,
    }
    let response = BOOTLOADER_INFO.get_response()?;
    // SAFETY: `limine_bootloader_info_response` is `{ u64 revision;
    // char *name; char *version; }` (Limine protocol, revision 0), which
    // `Raw` mirrors; the response is valid while the HHDM is.
    let raw = unsafe { &*(response as *const _ as *const Raw) };
    Some((c_str(raw.name), c_str(raw.version)))
}

/// The paging mode the CPU runs in (CR4.LA57).
pub fn paging_levels_from_cr4() -> Levels {
    if Cr4::read().contains(Cr4Flags::L5_PAGING) {
        Levels::Five
    } else {
        Levels::Four
    }
}

#[cfg(not(feature = "test-omit-hhdm-request"))]
/// Limine's HHDM offset, before [`collect`] has checked the handover.
pub fn hhdm_offset() -> Option<u64> {
    HHDM.get_response().map(|r| r.offset())
}

/// Limine's HHDM offset: none, in this build.
#[cfg(feature = "test-omit-hhdm-request")]
pub fn hhdm_offset() -> Option<u64> {
    None
}

/// Checks the handover and copies everything baton keeps, then reports
/// it (and, in test runs, damages the copy as `inject=` asks).
pub fn collect() -> Result<&'static BootInfo, BootError> {
    let bootloader = bootloader_info();
    let in_effect = base_revision(bootloader.as_ref())?;
    let hhdm_offset = hhdm_offset().ok_or(BootError::Missing(
        "HHDM (higher-half direct map): baton cannot reach the memory maps without it",
    ))?;
    let exec = EXECUTABLE_ADDRESS.get_response().ok_or(BootError::Missing(
        "executable address: baton cannot map its own image without it",
    ))?;
    let firmware = firmware();
    let levels = paging_levels()?;
    copy_maps(firmware, in_effect, hhdm_offset)?;
    let efi_system_table = EFI_SYSTEM_TABLE
        .get_response()
        .filter(|_| firmware.is_uefi())
        .and_then(|r| {
            BootPointer::EfiSystemTable.to_phys(in_effect.revision, r.address() as u64, hhdm_offset)
        });
    let mp = MP.get_response().map(|r| MpInfo {
        bsp_apic_id: r.bsp_lapic_id(),
        count: r.cpus().len(),
        cpus_phys: (r.cpus().as_ptr() as u64).wrapping_sub(hhdm_offset),
    });
    let (bootloader_name, bootloader_version) =
        bootloader.unwrap_or((FixedStr::from_str_truncating("unknown"), FixedStr::new()));
    let info = BOOT_INFO.call_once(|| BootInfo {
        bootloader_name,
        bootloader_version,
        firmware,
        revision: in_effect,
        hhdm_offset,
        kernel_phys: exec.physical_base(),
        kernel_virt: exec.virtual_base(),
        levels,
        cmdline: cmdline().0,
        efi_system_table,
        mp,
        framebuffer: first_framebuffer().map(|early| early.fb),
        kernel_file: EXECUTABLE_FILE.get_response().and_then(|r| {
            Some(KernelFile {
                phys: (r.file().addr() as u64).checked_sub(hhdm_offset)?,
                size: r.file().size(),
            })
        }),
        boot_time: DATE_AT_BOOT.get_response().map(|r| r.timestamp().as_secs()),
    });
    report(info);
    if let Some(defect) = crate::testing::injected() {
        damage::damage(&mut RAW_MAPS.lock(), defect);
    }
    Ok(info)
}

/// The base revision in effect, from the tag's answer and, for Limine
/// releases that do not write it back, the bootloader's version.
fn base_revision(bootloader: Option<&(FixedStr<64>, FixedStr<64>)>) -> Result<InEffect, BootError> {
    let tag = revision::Tag {
        loaded: BASE_REVISION
            .loaded_revision()
            .unwrap_or(revision::LOADED_MAGIC),
        revision: if BASE_REVISION.is_supported() {
            0
        } else {
            REQUESTED_REVISION
        },
    };
    revision::resolve(
        REQUESTED_REVISION,
        tag,
        bootloader.map(|(n, v)| (n.as_str(), v.as_str())),
    )
    .map_err(BootError::Revision)
}

/// The firmware Limine booted from.
fn firmware() -> Firmware {
    match FIRMWARE_TYPE.get_response().map(|r| r.firmware_type()) {
        Some(FirmwareType::X86_BIOS) => Firmware::Bios,
        Some(FirmwareType::UEFI_32) => Firmware::Uefi32,
        Some(FirmwareType::UEFI_64) => Firmware::Uefi64,
        Some(_) => Firmware::Other,
        // Old bootloaders lack the request: the EFI system table tells.
        None if EFI_SYSTEM_TABLE.get_response().is_some() => Firmware::Uefi64,
        None => Firmware::Bios,
    }
}

/// The paging mode in effect (CR4.LA57), which Limine's answer must not
/// contradict.
fn paging_levels() -> Result<Levels, BootError> {
    let levels = paging_levels_from_cr4();
    if let Some(r) = PAGING_MODE.get_response() {
        let response = if r.mode() == paging::Mode::FIVE_LEVEL {
            Levels::Five
        } else {
            Levels::Four
        };
        if response != levels {
            return Err(BootError::PagingMismatch {
                response,
                cr4: levels,
            });
        }
    }
    Ok(levels)
}

/// Copies Limine's memory map and, on UEFI, the firmware's into
/// [`RAW_MAPS`].
fn copy_maps(firmware: Firmware, in_effect: InEffect, hhdm_offset: u64) -> Result<(), BootError> {
    let memmap = MEMMAP
        .get_response()
        .ok_or(BootError::Missing("memory map"))?;
    let mut raw = RAW_MAPS.lock();
    let entries = memmap.entries();
    if entries.len() > MAX_LIMINE_ENTRIES {
        return Err(BootError::TooManyLimineEntries(entries.len()));
    }
    for (slot, &e) in raw.limine.iter_mut().zip(entries) {
        // SAFETY: `limine::memory_map::Entry` is `#[repr(C)] { base: u64,
        // length: u64, entry_type: EntryType }` with `EntryType` a
        // `#[repr(transparent)]` u64: the layout of handoff's
        // `#[repr(C)]` `LimineEntry`. The
        // crate hides the numeric type, which baton logs and classifies
        // itself (including types newer than the crate).
        *slot = unsafe { *(e as *const limine::memory_map::Entry as *const LimineEntry) };
    }
    raw.limine_len = entries.len();
    raw.efi_info = None;
    if !firmware.is_uefi() {
        return Ok(());
    }
    let r = EFI_MEMMAP.get_response().ok_or(BootError::Missing(
        "EFI memory map on a UEFI boot: baton needs the firmware's map to keep \
         runtime services working",
    ))?;
    let size = r.memmap_size();
    if size > MAX_EFI_MAP_BYTES as u64 {
        return Err(BootError::EfiMapTooLarge {
            size,
            desc_size: r.desc_size(),
        });
    }
    let ptr = r.memmap() as u64;
    BootPointer::EfiMemoryMap
        .to_phys(in_effect.revision, ptr, hhdm_offset)
        .ok_or(BootError::BadPointer("EFI memory map", ptr))?;
    // SAFETY: Limine's EFI memory map response points at `size` bytes
    // in bootloader memory, mapped by the HHDM (checked just above to
    // be an HHDM address) until baton switches page tables.
    let bytes = unsafe { core::slice::from_raw_parts(r.memmap() as *const u8, size as usize) };
    raw.efi[..bytes.len()].copy_from_slice(bytes);
    raw.efi_info = Some(EfiMapInfo {
        size: bytes.len(),
        desc_size: r.desc_size() as usize,
        desc_version: r.desc_version(),
    });
    Ok(())
}

/// Logs what Limine handed over, as baton copied it.
fn report(boot: &BootInfo) {
    use log::{debug, info};
    info!(
        "boot: bootloader {} {}, firmware {}",
        boot.bootloader_name,
        boot.bootloader_version,
        boot.firmware.name()
    );
    debug!(
        "boot: base revision requested {}, in effect {}",
        requested_revision(),
        boot.revision
    );
    debug!("boot: HHDM offset {:#x}", boot.hhdm_offset);
    debug!(
        "boot: kernel at physical {:#x}, virtual {:#x}",
        boot.kernel_phys, boot.kernel_virt
    );
    debug!("boot: paging {}-level", boot.levels.count());
    info!("boot: command line \"{}\"", boot.cmdline);
    let raw = RAW_MAPS.lock();
    match raw.efi() {
        Some((_, efi)) => debug!(
            "boot: memory map: {} Limine entries, {} EFI descriptors (desc_size {}, version {})",
            raw.limine().len(),
            efi.size / efi.desc_size.max(1),
            efi.desc_size,
            efi.desc_version
        ),
        None => debug!(
            "boot: memory map: {} Limine entries, no EFI memory map",
            raw.limine().len()
        ),
    }
    if let Some(fb) = boot.framebuffer {
        debug!(
            "boot: framebuffer {}x{}, {} bpp, at physical {:#x}",
            fb.width, fb.height, fb.bpp, fb.phys
        );
    }
    if let Some(st) = boot.efi_system_table {
        debug!("boot: EFI system table at physical {st:#x}");
    }
}

/// The EFI system table response's pointer as Limine gave it (physical or
/// an HHDM address, by base revision). Only before the switch: the
/// response lives in bootloader memory reached through the HHDM.
pub fn efi_system_table_pointer() -> Option<u64> {
    EFI_SYSTEM_TABLE.get_response().map(|r| r.address() as u64)
}

/// The base revision this build requested.
pub const fn requested_revision() -> u64 {
    REQUESTED_REVISION
}
