//! The W^X rule for mappings made after the boot: refuse a page that is
//! both writable and executable before it is written, rather than find it
//! with the walker's check afterwards.

use core::fmt;

use x86_64::structures::paging::PageTableFlags;

use super::pages::Mapping;

/// Why a mapping's permissions are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WxError {
    /// The flags make the pages writable and executable while the CPU could
    /// forbid execution (NX).
    WritableAndExecutable {
        /// The flags asked for.
        flags: PageTableFlags,
    },
    /// The flags ask for no-execute on a CPU without NX, where the bit is
    /// reserved and faults.
    NxUnavailable {
        /// The flags asked for.
        flags: PageTableFlags,
    },
}

impl fmt::Display for WxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WxError::WritableAndExecutable { flags } => {
                write!(f, "W+X mapping refused: {flags:?} lacks NO_EXECUTE")
            }
            WxError::NxUnavailable { flags } => {
                write!(f, "{flags:?} asks for NO_EXECUTE, which the CPU lacks")
            }
        }
    }
}

impl core::error::Error for WxError {}

/// Checks leaf flags against W^X.
///
/// With NX (`nx_available`, EFER.NXE on), a writable mapping must also be
/// no-execute. Without NX every page is executable and nothing can be
/// refused on that ground, but the NX bit itself is then reserved, so
/// asking for it is refused.
pub fn check_wx(flags: PageTableFlags, nx_available: bool) -> Result<(), WxError> {
    let nx = flags.contains(PageTableFlags::NO_EXECUTE);
    if !nx_available {
        return if nx {
            Err(WxError::NxUnavailable { flags })
        } else {
            Ok(())
        };
    }
    if flags.contains(PageTableFlags::WRITABLE) && !nx {
        return Err(WxError::WritableAndExecutable { flags });
    }
    Ok(())
}

impl Mapping {
    /// Checks the mapping's flags against W^X (see [`check_wx`]).
    pub fn check_wx(&self, nx_available: bool) -> Result<(), WxError> {
        check_wx(self.flags, nx_available)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::PageSize;
    use x86_64::PhysAddr;

    const W: PageTableFlags = PageTableFlags::WRITABLE;
    const NX: PageTableFlags = PageTableFlags::NO_EXECUTE;
    const GLB: PageTableFlags = PageTableFlags::GLOBAL;

    #[test]
    fn every_combination_with_nx() {
        let none = PageTableFlags::empty();
        assert_eq!(check_wx(none, true), Ok(()), "read-execute");
        assert_eq!(check_wx(NX, true), Ok(()), "read-only");
        assert_eq!(check_wx(W | NX | GLB, true), Ok(()), "read-write");
        assert_eq!(
            check_wx(W | GLB, true),
            Err(WxError::WritableAndExecutable { flags: W | GLB })
        );
    }

    #[test]
    fn without_nx_only_the_reserved_bit_is_refused() {
        assert_eq!(check_wx(W, false), Ok(()));
        assert_eq!(check_wx(PageTableFlags::empty(), false), Ok(()));
        assert_eq!(
            check_wx(W | NX, false),
            Err(WxError::NxUnavailable { flags: W | NX })
        );
    }

    #[test]
    fn mappings_are_checked_by_their_flags() {
        let m = Mapping {
            virt: 0xffff_c900_0000_0000,
            phys: PhysAddr::new(0x1000),
            len: 0x1000,
            flags: W,
            max_page: PageSize::Size4K,
        };
        assert!(m.check_wx(true).is_err());
        assert_eq!(Mapping { flags: W | NX, ..m }.check_wx(true), Ok(()));
        assert_eq!(
            WxError::WritableAndExecutable { flags: W }.to_string(),
            "W+X mapping refused: PageTableFlags(WRITABLE) lacks NO_EXECUTE"
        );
    }
}
