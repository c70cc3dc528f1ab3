//! What the firmware says about its runtime services, and the rules baton
//! keeps when calling them: `EFI_RT_PROPERTIES_TABLE` (which services it
//! supports after ExitBootServices) and the reserve of variable storage a
//! write must leave (Linux's `efi_query_variable_store`).

use core::fmt;

use uefi_raw::{Guid, guid};

/// `EFI_RT_PROPERTIES_TABLE_GUID`.
pub const RT_PROPERTIES_TABLE_GUID: Guid = guid!("eb66918a-7eef-402a-842e-931d21c38ae9");

/// The variable storage a write must leave free, as Linux's
/// `EFI_MIN_RESERVE`: some firmware fails to boot with less.
pub const MIN_VARIABLE_RESERVE: u64 = 5 * 1024;

/// A runtime service, with its bit in `RuntimeServicesSupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Service {
    /// GetTime.
    GetTime = 0x1,
    /// SetTime.
    SetTime = 0x2,
    /// GetWakeupTime.
    GetWakeupTime = 0x4,
    /// SetWakeupTime.
    SetWakeupTime = 0x8,
    /// GetVariable.
    GetVariable = 0x10,
    /// GetNextVariableName.
    GetNextVariableName = 0x20,
    /// SetVariable.
    SetVariable = 0x40,
    /// SetVirtualAddressMap.
    SetVirtualAddressMap = 0x80,
    /// ConvertPointer.
    ConvertPointer = 0x100,
    /// GetNextHighMonotonicCount.
    GetNextHighMonotonicCount = 0x200,
    /// ResetSystem.
    ResetSystem = 0x400,
    /// UpdateCapsule.
    UpdateCapsule = 0x800,
    /// QueryCapsuleCapabilities.
    QueryCapsuleCapabilities = 0x1000,
    /// QueryVariableInfo.
    QueryVariableInfo = 0x2000,
}

impl Service {
    /// Its bit in `RuntimeServicesSupported`.
    pub const fn bit(self) -> u32 {
        self as u32
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which runtime services the firmware supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported(u32);

impl Supported {
    /// Every service: what a firmware without the table promises.
    pub const ALL: Supported = Supported(0x3fff);

    /// The services set in `mask`.
    pub const fn from_mask(mask: u32) -> Supported {
        Supported(mask)
    }

    /// From an `EFI_RT_PROPERTIES_TABLE` (version 1: `u16` version, `u16`
    /// length, `u32` RuntimeServicesSupported), or `None` if it is not one.
    pub fn from_table(bytes: &[u8]) -> Option<Supported> {
        let version = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?);
        let length = u16::from_le_bytes(bytes.get(2..4)?.try_into().ok()?);
        let mask = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
        (version >= 1 && length >= 8).then_some(Supported(mask))
    }

    /// Whether `service` may be called.
    pub const fn supports(self, service: Service) -> bool {
        self.0 & service.bit() != 0
    }

    /// The mask.
    pub const fn mask(self) -> u32 {
        self.0
    }
}

/// Whether a write of `size` bytes of variable data may go ahead when the
/// firmware reports `remaining` bytes of storage left: it must leave
/// [`MIN_VARIABLE_RESERVE`].
pub const fn variable_store_allows(remaining: u64, size: u64) -> bool {
    match remaining.checked_sub(size) {
        Some(left) => left >= MIN_VARIABLE_RESERVE,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_properties_table_gives_the_supported_services() {
        let mut bytes = [0u8; 8];
        bytes[..2].copy_from_slice(&1u16.to_le_bytes());
        bytes[2..4].copy_from_slice(&8u16.to_le_bytes());
        bytes[4..].copy_from_slice(&(0x10 | 0x40 | 0x400u32).to_le_bytes());
        let s = Supported::from_table(&bytes).unwrap();
        // The mask is what the kernel keeps between calls: it round-trips.
        assert_eq!(s.mask(), 0x10 | 0x40 | 0x400);
        assert_eq!(Supported::from_mask(s.mask()), s);
        assert!(s.supports(Service::GetVariable));
        assert!(s.supports(Service::SetVariable));
        assert!(s.supports(Service::ResetSystem));
        assert!(!s.supports(Service::GetTime));
        assert!(!s.supports(Service::QueryVariableInfo));
        // Too short, or an unknown version 0: not a table.
        assert_eq!(Supported::from_table(&bytes[..6]), None);
        bytes[..2].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(Supported::from_table(&bytes), None);
        for service in [
            Service::GetTime,
            Service::SetVirtualAddressMap,
            Service::QueryVariableInfo,
        ] {
            assert!(Supported::ALL.supports(service));
        }
    }

    #[test]
    fn a_write_must_leave_the_reserve() {
        assert!(variable_store_allows(64 * 1024, 1024));
        assert!(variable_store_allows(6 * 1024, 1024));
        assert!(!variable_store_allows(6 * 1024, 1025));
        assert!(!variable_store_allows(4 * 1024, 0));
        assert!(!variable_store_allows(1024, 4096));
    }
}
