//! What baton does with each kind of physical memory.
//!
//! Three exhaustive matches hold the whole policy: firmware type to [`Kind`]
//! for the EFI map ([`Kind::from_efi`]) and for Limine's map
//! ([`Kind::from_limine`]), and [`Kind`] to [`Policy`] ([`Kind::policy`]).
//! Nothing else in baton decides whether a range is RAM or when it may be
//! allocated.

use uefi_raw::table::boot::MemoryType;

use super::limine;

/// What a physical range holds, in baton's terms.
///
/// The variants are in order of precedence: where inputs overlap, the
/// greatest (most restrictive) kind wins. The order follows what mistaking
/// one kind for the other would break:
///
/// * the three kinds that become free memory come first, earliest free first,
///   so that any other claim on a page keeps it out of the allocator;
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

/// How baton treats a [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// RAM: mapped in the physmap (the direct map of all RAM).
    pub ram: bool,
    /// When the frame allocator may hand it out.
    pub allocatable: Allocatable,
}

impl Kind {
    /// Every kind, in order of precedence.
    pub const ALL: [Kind; 14] = [
        Kind::Usable,
        Kind::BootServices,
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
    pub const fn policy(self) -> Policy {
        use Allocatable::*;
        let (ram, allocatable) = match self {
            // Free RAM.
            Kind::Usable => (true, Now),
            // RAM, reused once the firmware can no longer touch it.
            Kind::BootServices => (true, AfterEfiHandoff),
            // RAM under Limine's page tables and responses, which baton reads
            // until its own tables are loaded.
            Kind::BootloaderReclaimable => (true, AfterCr3Switch),
            // RAM holding the kernel and its modules.
            Kind::Kernel => (true, Never),
            // RAM holding ACPI tables, which baton keeps.
            Kind::AcpiReclaimable => (true, Never),
            // RAM the firmware owns; in the physmap so ACPI can reach it.
            Kind::AcpiNvs => (true, Never),
            // RAM the runtime services own; in the physmap too, since the EFI
            // system table and runtime data must be readable through it.
            Kind::RuntimeData | Kind::RuntimeCode => (true, Never),
            // Not RAM: pmem is mapped on demand, not in the direct map.
            Kind::Persistent => (false, Never),
            // Not RAM until accepted; touching it faults the guest.
            Kind::Unaccepted => (false, Never),
            // Not RAM: mapped write-combining through ioremap.
            Kind::Framebuffer => (false, Never),
            // Not RAM: may be anything, caching it could corrupt it.
            Kind::Reserved => (false, Never),
            // Device registers: mapped uncached through ioremap.
            Kind::Mmio => (false, Never),
            // Broken memory: never mapped.
            Kind::Bad => (false, Never),
        };
        Policy { ram, allocatable }
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
        assert!(Kind::BootServices < Kind::BootloaderReclaimable);
        assert!(Kind::BootloaderReclaimable < Kind::Kernel);
        assert!(Kind::Kernel < Kind::AcpiReclaimable);
        assert!(Kind::RuntimeData < Kind::RuntimeCode);
        assert!(Kind::Framebuffer < Kind::Reserved);
        assert!(Kind::Reserved < Kind::Mmio);
        assert!(Kind::Mmio < Kind::Bad);
        // Every kind that is ever allocated ranks below every kind that is not.
        for a in Kind::ALL.iter().filter(|k| k.is_usable_class()) {
            for b in Kind::ALL.iter().filter(|k| !k.is_usable_class()) {
                assert!(a < b, "{a:?} must lose to {b:?}");
            }
        }
    }

    #[test]
    fn policy_table() {
        let expected = [
            (Kind::Usable, true, Now),
            (Kind::BootServices, true, AfterEfiHandoff),
            (Kind::BootloaderReclaimable, true, AfterCr3Switch),
            (Kind::Kernel, true, Never),
            (Kind::AcpiReclaimable, true, Never),
            (Kind::AcpiNvs, true, Never),
            (Kind::RuntimeData, true, Never),
            (Kind::RuntimeCode, true, Never),
            (Kind::Persistent, false, Never),
            (Kind::Unaccepted, false, Never),
            (Kind::Framebuffer, false, Never),
            (Kind::Reserved, false, Never),
            (Kind::Mmio, false, Never),
            (Kind::Bad, false, Never),
        ];
        assert_eq!(expected.len(), Kind::COUNT);
        for (kind, ram, allocatable) in expected {
            assert_eq!(kind.policy(), Policy { ram, allocatable }, "{kind:?}");
            assert_eq!(kind.is_ram(), ram);
        }
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
