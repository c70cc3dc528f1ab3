//! Why the handoff stopped, and which tables a check read.

use core::fmt;

use handoff::memmap::MapError;
use handoff::memtype::{MtrrError, PatError};
use handoff::paging::BuildError;
use handoff::plan::{self, PlanError};

/// Which tables a check read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// baton's new tables, through Limine's HHDM, before CR3 is loaded.
    New,
    /// The live tables, through baton's physmap, after the switch.
    Live,
}

impl fmt::Display for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tables::New => "the new tables, through Limine's HHDM, before the switch",
            Tables::Live => "the live tables",
        })
    }
}

/// Why the handoff stopped.
#[derive(Debug)]
pub enum ShimError {
    Map(MapError),
    Mtrr(MtrrError),
    Pat(PatError),
    Plan(PlanError),
    Build(BuildError),
    NoUsableMemory,
    NoEfiMap,
    Verify(Tables, plan::VerifyError),
    WxFound(u64),
    /// A leaf maps this lower-half address.
    LowerHalfMapped(Tables, u64),
    /// A top-level entry of the lower half is present.
    LowerHalfEntry {
        tables: Tables,
        index: usize,
        entry: u64,
    },
    PhysmapSample {
        tables: Tables,
        phys: u64,
        found: Option<u64>,
    },
}

impl fmt::Display for ShimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShimError::Map(e) => write!(f, "memory map: {e}"),
            ShimError::Mtrr(e) => write!(f, "MTRRs: {e}"),
            ShimError::Pat(e) => write!(f, "PAT: {e}"),
            ShimError::Plan(e) => write!(f, "plan: {e}"),
            ShimError::Build(e) => write!(f, "building the page tables: {e}"),
            ShimError::NoUsableMemory => write!(f, "no usable memory for page tables"),
            ShimError::NoEfiMap => write!(
                f,
                "UEFI boot without an EFI memory map: baton needs it for memory types \
                 and runtime services"
            ),
            ShimError::Verify(tables, e) => write!(f, "{tables} differ from the plan: {e}"),
            ShimError::WxFound(n) => write!(f, "{n} W+X pages in the live tables"),
            ShimError::LowerHalfMapped(tables, va) => {
                write!(
                    f,
                    "{tables}: the lower half is not empty: {va:#x} is mapped"
                )
            }
            ShimError::LowerHalfEntry {
                tables,
                index,
                entry,
            } => write!(
                f,
                "{tables}: the lower half is not empty: top-level entry {index} is present \
                 ({entry:#x})"
            ),
            ShimError::PhysmapSample {
                tables,
                phys,
                found,
            } => write!(
                f,
                "{tables}: physmap address of {phys:#x} translates to {found:?}"
            ),
        }
    }
}

macro_rules! from_error {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for ShimError {
            fn from(e: $ty) -> Self {
                ShimError::$variant(e)
            }
        }
    )*};
}
from_error!(
    Map(MapError),
    Mtrr(MtrrError),
    Pat(PatError),
    Plan(PlanError),
    Build(BuildError)
);
