//! What baton does with each kind of physical memory.
//!
//! Three exhaustive matches hold the whole policy: firmware type to [`Kind`]
//! for the EFI map ([`Kind::from_efi`], with [`Kind::from_efi_desc`] for
//! the one attribute that changes the kind) and for Limine's map
//! ([`Kind::from_limine`]), and [`Kind`] to [`Policy`] ([`Kind::policy`]):
//! per kind, whether it is RAM for the physmap, whether it goes into the
//! EFI runtime window, and whether it is allocatable now, after the CR3
//! switch, after the EFI handoff, or never. A kind that is none of these
//! is never touched ([`Policy::never_touched`]). Nothing else in baton
//! decides whether a range is RAM, runtime memory or when it may be
//! allocated.

use uefi_raw::table::boot::{MemoryAttribute, MemoryType};

use super::limine::{self, LimineEntry};

/// What a physical range holds, in baton's terms.
///
/// The variants are in order of precedence: where inputs overlap, the
/// greatest (most restrictive) kind wins. The order follows what mistaking
/// one kind for the other would break:
///
/// * the three kinds that become free memory come first, earliest free first,
///   so that any other claim on a page keeps it out of the allocator;
/// * specific-purpose memory among them, above the firmware's free memory
///   but below what Limine put there (its responses, the kernel): it is
///   never general RAM, but what Limine placed in it must stay reachable
///   (and Limine's reclaimable memory is reclaimed like any other);
/// * then RAM baton keeps: the kernel, ACPI tables, then the EFI runtime
///   regions (code above data, since it also needs executing);
/// * then memory that is not plain RAM (persistent, unaccepted) and the
///   framebuffer, which must not be mapped write-back;
/// * then reserved and MMIO ranges, which must not be touched as RAM at all;
/// * bad memory last: nothing may ever use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Free RAM.
    Usable,
    /// EFI boot-services code and data: free once the EFI handoff is done.
    BootServices,
    /// Conventional, loader or boot-services memory with EFI_MEMORY_SP
    /// (specific purpose, UEFI 2.8):
    /// meant for particular devices or applications, not for the OS's own
    /// data. Linux calls it "soft reserved" (`E820_TYPE_SOFT_RESERVED`),
    /// keeps it out of the page allocator and out of the direct map, and
    /// hands it to device DAX; baton keeps away from it likewise.
    SoftReserved,
    /// The bootloader's memory (Limine's page tables, stack, responses, its
    /// EFI image): free once baton runs on its own page tables.
    BootloaderReclaimable,
    /// The kernel image and the modules Limine loaded.
    Kernel,
    /// ACPI tables.
    AcpiReclaimable,
    /// ACPI non-volatile storage, owned by the firmware.
    AcpiNvs,
    /// EFI runtime-services data.
    RuntimeData,
    /// EFI runtime-services code.
    RuntimeCode,
    /// Persistent (non-volatile) memory.
    Persistent,
    /// Memory the guest must accept (TDX, SEV-SNP) before using it.
    Unaccepted,
    /// The bootloader's framebuffer.
    Framebuffer,
    /// Reserved by the firmware, or of a type baton does not know.
    Reserved,
    /// Memory-mapped I/O.
    Mmio,
    /// Memory with detected errors.
    Bad,
}

/// When memory of a kind may be handed to the frame allocator.
///
/// The variants follow the boot in order: memory allocatable at one stage
/// stays allocatable at every later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Allocatable {
    /// From the start.
    Now,
    /// Once baton has loaded its own page tables (CR3 switch): nothing of
    /// Limine's is needed any more.
    AfterCr3Switch,
    /// Once SetVirtualAddressMap has returned: some firmware still touches
    /// boot-services memory until then (Linux keeps it as long).
    AfterEfiHandoff,
    /// Never.
    Never,
}

/// Whether memory of a kind goes into the EFI runtime window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InEfiWindow {
    /// When its EFI descriptor has EFI_MEMORY_RUNTIME: UEFI lets the
    /// attribute, on any type, ask the OS for a virtual mapping (the
    /// runtime services' code and data, but also runtime MMIO such as
    /// OVMF's flash, or reserved ranges), and Linux maps exactly those.
    IfAttribute,
    /// Never, whatever the attributes say: memory that only Limine
    /// describes or that must not be touched at all.
    Never,
}

/// How baton treats a [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// RAM: mapped in the physmap (the direct map of all RAM).
    pub ram: bool,
    /// Whether it goes into the EFI runtime window.
    pub runtime: InEfiWindow,
    /// When the frame allocator may hand it out.
    pub allocatable: Allocatable,
}

impl Policy {
    /// Whether the handoff and the memory services leave memory of this
    /// policy alone: not RAM, never in the EFI window, never allocatable.
    /// (A driver may still map device memory among it on purpose: the
    /// framebuffer, write-combining through ioremap.)
    pub const fn never_touched(&self) -> bool {
        !self.ram
            && matches!(self.runtime, InEfiWindow::Never)
            && matches!(self.allocatable, Allocatable::Never)
    }
}

impl LimineEntry {
    /// baton's kind for the entry's type ([`Kind::from_limine`]).
    pub const fn kind(&self) -> Kind {
        Kind::from_limine(self.ty)
    }
}

impl Kind {
    /// Every kind, in order of precedence.
    pub const ALL: [Kind; 15] = [
        Kind::Usable,
        Kind::BootServices,
        Kind::SoftReserved,
        Kind::BootloaderReclaimable,
        Kind::Kernel,
        Kind::AcpiReclaimable,
        Kind::AcpiNvs,
        Kind::RuntimeData,
        Kind::RuntimeCode,
        Kind::Persistent,
        Kind::Unaccepted,
        Kind::Framebuffer,
        Kind::Reserved,
        Kind::Mmio,
        Kind::Bad,
    ];

    /// The number of kinds.
    pub const COUNT: usize = Self::ALL.len();

    /// The position of the kind in [`Kind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kind of an EFI memory type.
    pub const fn from_efi(ty: MemoryType) -> Kind {
        match ty {
            // Itanium-era "reserved" and the firmware's own holes.
            MemoryType::RESERVED => Kind::Reserved,
            // The EFI loader's image and allocations (Limine's own image;
            // Limine reports its allocations as conventional and lists them
            // in its own map): free once nothing of Limine's is needed.
            MemoryType::LOADER_CODE | MemoryType::LOADER_DATA => Kind::BootloaderReclaimable,
            // Free after ExitBootServices, but Linux keeps it until
            // SetVirtualAddressMap because some firmware still uses it.
            MemoryType::BOOT_SERVICES_CODE | MemoryType::BOOT_SERVICES_DATA => Kind::BootServices,
            // Runtime services: kept forever and mapped in the EFI window.
            MemoryType::RUNTIME_SERVICES_CODE => Kind::RuntimeCode,
            MemoryType::RUNTIME_SERVICES_DATA => Kind::RuntimeData,
            // Free memory.
            MemoryType::CONVENTIONAL => Kind::Usable,
            // The firmware found errors here.
            MemoryType::UNUSABLE => Kind::Bad,
            // ACPI tables: baton parses them in place and keeps them.
            MemoryType::ACPI_RECLAIM => Kind::AcpiReclaimable,
            // Firmware storage across sleep states: never touched.
            MemoryType::ACPI_NON_VOLATILE => Kind::AcpiNvs,
            // Device registers (the pflash of OVMF is one, with RUNTIME).
            MemoryType::MMIO | MemoryType::MMIO_PORT_SPACE => Kind::Mmio,
            // Itanium PAL code: has no meaning on x86, so keep away.
            MemoryType::PAL_CODE => Kind::Reserved,
            // NVDIMMs: not plain RAM, mapped on demand like Linux's pmem.
            MemoryType::PERSISTENT_MEMORY => Kind::Persistent,
            // Needs TDX/SEV-SNP acceptance, which baton does not do.
            MemoryType::UNACCEPTED => Kind::Unaccepted,
            // MAX, OEM (0x7000_0000..) and OS-loader (0x8000_0000..) types, and
            // anything newer than baton: unknown, so never used.
            _ => Kind::Reserved,
        }
    }

    /// The kind of an EFI descriptor: its type's ([`Kind::from_efi`]),
    /// except for memory that would become free (conventional, loader and
    /// boot-services memory):
    ///
    /// * with EFI_MEMORY_RUNTIME it is runtime code or data (by its type):
    ///   the firmware still needs it, so it is never freed (Linux's
    ///   efi_free_boot_services skips such descriptors too);
    /// * else with EFI_MEMORY_SP (`0x40000`, uefi-raw's `SPECIAL_PURPOSE`)
    ///   it is [`Kind::SoftReserved`], as Linux's EFI stub makes it
    ///   (`setup_e820`, with `efi_soft_reserve_enabled()`); on other types
    ///   the hint changes nothing.
    pub const fn from_efi_desc(ty: MemoryType, attr: MemoryAttribute) -> Kind {
        let kind = Kind::from_efi(ty);
        if !matches!(
            kind,
            Kind::Usable | Kind::BootServices | Kind::BootloaderReclaimable
        ) {
            return kind;
        }
        if attr.contains(MemoryAttribute::RUNTIME) {
            return if matches!(ty, MemoryType::BOOT_SERVICES_CODE | MemoryType::LOADER_CODE) {
                Kind::RuntimeCode
            } else {
                Kind::RuntimeData
            };
        }
        if attr.contains(MemoryAttribute::SPECIAL_PURPOSE) {
            return Kind::SoftReserved;
        }
        kind
    }

    /// The kind of a Limine memory-map type.
    pub const fn from_limine(ty: u64) -> Kind {
        match ty {
            // Free memory.
            limine::USABLE => Kind::Usable,
            // Limine's firmware-reserved ranges (on UEFI, also the runtime
            // regions).
            limine::RESERVED => Kind::Reserved,
            // ACPI tables.
            limine::ACPI_RECLAIMABLE => Kind::AcpiReclaimable,
            // ACPI non-volatile storage.
            limine::ACPI_NVS => Kind::AcpiNvs,
            // Memory with detected errors.
            limine::BAD_MEMORY => Kind::Bad,
            // Limine's page tables, stack, responses and image.
            limine::BOOTLOADER_RECLAIMABLE => Kind::BootloaderReclaimable,
            // The kernel image and the modules.
            limine::EXECUTABLE_AND_MODULES => Kind::Kernel,
            // The framebuffer(s) Limine set up.
            limine::FRAMEBUFFER => Kind::Framebuffer,
            // Revision 5's reserved ranges that Limine maps in the HHDM (EFI
            // runtime regions): reserved all the same for baton.
            limine::RESERVED_MAPPED => Kind::Reserved,
            // A type newer than baton: unknown, so never used.
            _ => Kind::Reserved,
        }
    }

    /// How baton treats memory of this kind.
    ///
    /// Whether a range goes into the EFI window is stated per kind here and
    /// decided per range by its attributes ([`InEfiWindow::IfAttribute`]); see
    /// `Region::is_efi_runtime`.
    pub const fn policy(self) -> Policy {
        use Allocatable::{AfterCr3Switch, AfterEfiHandoff, Never, Now};
        use InEfiWindow::{IfAttribute, Never as NotRuntime};
        let (ram, runtime, allocatable) = match self {
            // Free RAM. Conventional memory with the runtime attribute would
            // be the firmware's: the attribute still decides.
            Kind::Usable => (true, IfAttribute, Now),
            // RAM, reused once the firmware can no longer touch it. Linux
            // leaves boot-services memory with the runtime attribute to the
            // firmware.
            Kind::BootServices => (true, IfAttribute, AfterEfiHandoff),
            // RAM under Limine's page tables and responses, which baton reads
            // until its own tables are loaded. Loader memory (Limine's EFI
            // image) never carries the runtime attribute in practice.
            Kind::BootloaderReclaimable => (true, IfAttribute, AfterCr3Switch),
            // Specific-purpose memory: not general RAM, so neither in the
            // physmap nor allocatable (Linux leaves soft-reserved memory out
            // of its direct map); a driver would map it on demand.
            Kind::SoftReserved => (false, IfAttribute, Never),
            // RAM holding the kernel and its modules: Limine's word only,
            // never the firmware's.
            Kind::Kernel => (true, NotRuntime, Never),
            // RAM holding ACPI tables, which baton keeps.
            Kind::AcpiReclaimable => (true, IfAttribute, Never),
            // RAM the firmware owns; in the physmap so ACPI can reach it.
            // Some firmware marks ACPI NVS runtime.
            Kind::AcpiNvs => (true, IfAttribute, Never),
            // RAM the runtime services own; in the physmap too, since the EFI
            // system table and runtime data must be readable through it; in
            // the EFI window through their runtime attribute.
            Kind::RuntimeData | Kind::RuntimeCode => (true, IfAttribute, Never),
            // Not RAM: pmem is mapped on demand, not in the direct map.
            Kind::Persistent => (false, IfAttribute, Never),
            // Not RAM until accepted; touching it faults the guest. Runtime
            // ranges among it still get a window address, as every
            // EFI_MEMORY_RUNTIME descriptor must for SetVirtualAddressMap
            // (Linux's should_map_region).
            Kind::Unaccepted => (false, IfAttribute, Never),
            // Not RAM: mapped write-combining through ioremap; Limine's word
            // only.
            Kind::Framebuffer => (false, NotRuntime, Never),
            // Not RAM: may be anything, caching it could corrupt it. Runtime
            // ranges among it are mapped in the EFI window.
            Kind::Reserved => (false, IfAttribute, Never),
            // Device registers: mapped uncached through ioremap, or in the
            // EFI window when runtime (the pflash of OVMF).
            Kind::Mmio => (false, IfAttribute, Never),
            // Broken memory: never in the physmap, never used; in the EFI
            // window only if the firmware marks it runtime, as above.
            Kind::Bad => (false, IfAttribute, Never),
        };
        Policy {
            ram,
            runtime,
            allocatable,
        }
    }

    /// Whether the kind is RAM, mapped in the physmap.
    pub const fn is_ram(self) -> bool {
        self.policy().ram
    }

    /// Whether the frame allocator ever gets this memory.
    ///
    /// These kinds are rounded inward to whole pages (a partial page may
    /// hold something else); all others outward (a partial page is theirs).
    pub const fn is_usable_class(self) -> bool {
        !matches!(self.policy().allocatable, Allocatable::Never)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Allocatable::*;

    #[test]
    fn all_is_in_declaration_order() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        assert!(Kind::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn most_restrictive_kinds_win() {
        // The order the design asks for, pair by pair where it matters.
        assert!(Kind::Usable < Kind::BootServices);
        assert!(Kind::BootServices < Kind::SoftReserved);
        assert!(Kind::SoftReserved < Kind::BootloaderReclaimable);
        assert!(Kind::BootloaderReclaimable < Kind::Kernel);
        assert!(Kind::Kernel < Kind::AcpiReclaimable);
        assert!(Kind::RuntimeData < Kind::RuntimeCode);
        assert!(Kind::Framebuffer < Kind::Reserved);
        assert!(Kind::Reserved < Kind::Mmio);
        assert!(Kind::Mmio < Kind::Bad);
        // Every kind that is ever allocated ranks below every kind that is
        // not, but for specific-purpose memory: what Limine allocated in it
        // is reclaimed like the rest of Limine's memory.
        for a in Kind::ALL.iter().filter(|k| k.is_usable_class()) {
            for b in Kind::ALL.iter().filter(|k| !k.is_usable_class()) {
                if (*a, *b) != (Kind::BootloaderReclaimable, Kind::SoftReserved) {
                    assert!(a < b, "{a:?} must lose to {b:?}");
                }
            }
        }
    }

    #[test]
    fn policy_table() {
        use InEfiWindow::IfAttribute as IfAttr;
        const NO: InEfiWindow = InEfiWindow::Never;
        // kind, RAM (physmap), runtime (EFI window), allocatable.
        let expected = [
            (Kind::Usable, true, IfAttr, Now),
            (Kind::BootServices, true, IfAttr, AfterEfiHandoff),
            (Kind::SoftReserved, false, IfAttr, Never),
            (Kind::BootloaderReclaimable, true, IfAttr, AfterCr3Switch),
            (Kind::Kernel, true, NO, Never),
            (Kind::AcpiReclaimable, true, IfAttr, Never),
            (Kind::AcpiNvs, true, IfAttr, Never),
            (Kind::RuntimeData, true, IfAttr, Never),
            (Kind::RuntimeCode, true, IfAttr, Never),
            (Kind::Persistent, false, IfAttr, Never),
            (Kind::Unaccepted, false, IfAttr, Never),
            (Kind::Framebuffer, false, NO, Never),
            (Kind::Reserved, false, IfAttr, Never),
            (Kind::Mmio, false, IfAttr, Never),
            (Kind::Bad, false, IfAttr, Never),
        ];
        assert_eq!(expected.len(), Kind::COUNT);
        for (kind, ram, runtime, allocatable) in expected {
            assert_eq!(
                kind.policy(),
                Policy {
                    ram,
                    runtime,
                    allocatable
                },
                "{kind:?}"
            );
            assert_eq!(kind.is_ram(), ram);
        }
        let never_touched: Vec<_> = Kind::ALL
            .into_iter()
            .filter(|k| k.policy().never_touched())
            .collect();
        // Only the framebuffer: unaccepted and bad memory still get a
        // window address when the firmware marks them runtime.
        assert_eq!(never_touched, [Kind::Framebuffer]);
        let usable_class: Vec<_> = Kind::ALL
            .into_iter()
            .filter(|k| k.is_usable_class())
            .collect();
        assert_eq!(
            usable_class,
            [
                Kind::Usable,
                Kind::BootServices,
                Kind::BootloaderReclaimable
            ]
        );
        assert!(Now < AfterCr3Switch && AfterCr3Switch < AfterEfiHandoff);
    }

    #[test]
    fn every_efi_type() {
        let expected = [
            Kind::Reserved,              // 0 RESERVED
            Kind::BootloaderReclaimable, // 1 LOADER_CODE
            Kind::BootloaderReclaimable, // 2 LOADER_DATA
            Kind::BootServices,          // 3 BOOT_SERVICES_CODE
            Kind::BootServices,          // 4 BOOT_SERVICES_DATA
            Kind::RuntimeCode,           // 5 RUNTIME_SERVICES_CODE
            Kind::RuntimeData,           // 6 RUNTIME_SERVICES_DATA
            Kind::Usable,                // 7 CONVENTIONAL
            Kind::Bad,                   // 8 UNUSABLE
            Kind::AcpiReclaimable,       // 9 ACPI_RECLAIM
            Kind::AcpiNvs,               // 10 ACPI_NON_VOLATILE
            Kind::Mmio,                  // 11 MMIO
            Kind::Mmio,                  // 12 MMIO_PORT_SPACE
            Kind::Reserved,              // 13 PAL_CODE
            Kind::Persistent,            // 14 PERSISTENT_MEMORY
            Kind::Unaccepted,            // 15 UNACCEPTED
            Kind::Reserved,              // 16 MAX: not a type
        ];
        for (ty, kind) in expected.into_iter().enumerate() {
            assert_eq!(Kind::from_efi(MemoryType(ty as u32)), kind, "type {ty}");
        }
        // Unknown, OEM and OS-loader types.
        for ty in [
            17,
            0x6fff_ffff,
            0x7000_0000,
            0x7fff_ffff,
            0x8000_0000,
            u32::MAX,
        ] {
            assert_eq!(
                Kind::from_efi(MemoryType(ty)),
                Kind::Reserved,
                "type {ty:#x}"
            );
        }
    }

    #[test]
    fn memory_the_runtime_needs_is_never_freed() {
        let rt = MemoryAttribute::RUNTIME | MemoryAttribute::WRITE_BACK;
        for (ty, kind) in [
            (MemoryType::BOOT_SERVICES_CODE, Kind::RuntimeCode),
            (MemoryType::LOADER_CODE, Kind::RuntimeCode),
            (MemoryType::BOOT_SERVICES_DATA, Kind::RuntimeData),
            (MemoryType::LOADER_DATA, Kind::RuntimeData),
            (MemoryType::CONVENTIONAL, Kind::RuntimeData),
        ] {
            assert_eq!(Kind::from_efi_desc(ty, rt), kind, "{ty:?}");
            assert_eq!(kind.policy().allocatable, Never);
            // Without the attribute, the type decides.
            assert_ne!(
                Kind::from_efi_desc(ty, MemoryAttribute::WRITE_BACK)
                    .policy()
                    .allocatable,
                Never,
                "{ty:?}"
            );
        }
        // Other types keep their kind: the attribute adds nothing to them.
        for ty in [
            MemoryType::ACPI_RECLAIM,
            MemoryType::MMIO,
            MemoryType::RESERVED,
        ] {
            assert_eq!(Kind::from_efi_desc(ty, rt), Kind::from_efi(ty), "{ty:?}");
        }
    }

    #[test]
    fn specific_purpose_free_memory_is_soft_reserved() {
        let sp = MemoryAttribute::SPECIAL_PURPOSE;
        assert_eq!(sp.bits(), 0x4_0000, "EFI_MEMORY_SP is bit 18");
        let wb = MemoryAttribute::WRITE_BACK;
        assert_eq!(
            Kind::from_efi_desc(MemoryType::CONVENTIONAL, wb | sp),
            Kind::SoftReserved
        );
        assert_eq!(
            Kind::from_efi_desc(MemoryType::CONVENTIONAL, wb),
            Kind::Usable
        );
        // Loader and boot-services memory too, as in Linux's EFI stub;
        // the hint changes no other type, and the runtime attribute wins.
        for ty in 0..16 {
            let ty = MemoryType(ty);
            let free = matches!(
                ty,
                MemoryType::CONVENTIONAL
                    | MemoryType::LOADER_CODE
                    | MemoryType::LOADER_DATA
                    | MemoryType::BOOT_SERVICES_CODE
                    | MemoryType::BOOT_SERVICES_DATA
            );
            let want = if free {
                Kind::SoftReserved
            } else {
                Kind::from_efi(ty)
            };
            assert_eq!(Kind::from_efi_desc(ty, wb | sp), want, "{ty:?}");
            let runtime = MemoryAttribute::RUNTIME;
            assert_ne!(
                Kind::from_efi_desc(ty, wb | sp | runtime),
                Kind::SoftReserved,
                "{ty:?}"
            );
        }
        // Neither RAM for the physmap nor allocatable, ever.
        let policy = Kind::SoftReserved.policy();
        assert!(!policy.ram);
        assert_eq!(policy.allocatable, Never);
        assert!(!Kind::SoftReserved.is_usable_class());
    }

    #[test]
    fn every_limine_type() {
        let expected = [
            Kind::Usable,                // 0 USABLE
            Kind::Reserved,              // 1 RESERVED
            Kind::AcpiReclaimable,       // 2 ACPI_RECLAIMABLE
            Kind::AcpiNvs,               // 3 ACPI_NVS
            Kind::Bad,                   // 4 BAD_MEMORY
            Kind::BootloaderReclaimable, // 5 BOOTLOADER_RECLAIMABLE
            Kind::Kernel,                // 6 EXECUTABLE_AND_MODULES
            Kind::Framebuffer,           // 7 FRAMEBUFFER
            Kind::Reserved,              // 8 RESERVED_MAPPED
        ];
        for (ty, kind) in expected.into_iter().enumerate() {
            assert_eq!(Kind::from_limine(ty as u64), kind, "type {ty}");
        }
        for ty in [9, 0x1000, u64::MAX] {
            assert_eq!(Kind::from_limine(ty), Kind::Reserved, "type {ty:#x}");
        }
    }
}
