//! What hostile input may and may not do to `handoff`, checked the same way
//! by the fuzz targets (`fuzz/fuzz_targets/*.rs`, which include this file
//! with `#[path]`) and by the replay and property tests
//! (`tests/hostile_input.rs`), so that a corpus file means the same thing
//! to both.
//!
//! Each `check_*` function decodes one input format from arbitrary bytes
//! (short inputs read as zeros, so every byte string is a valid input),
//! runs the code under test and panics if an invariant breaks:
//!
//! * [`check_memmap`]: an EFI map of raw bytes with any `desc_size`,
//!   version and length, and raw Limine entries;
//! * [`check_normalise`]: the same checks on maps built from compact
//!   records, which reach the normaliser far more often than raw bytes;
//! * [`check_efi_runtime`]: runtime-window assignment, the rewritten map
//!   for SetVirtualAddressMap, the attributes table and the window;
//! * [`check_plan`]: the plan for a map that parses, built into
//!   [`handoff::sim`] and held to the plan by [`plan::verify`];
//! * [`check_pe`]: the runtime images' PE/COFF headers, scanned in a
//!   runtime-code region and made into the window's permissions.
//!
//! By concern: [`input`] decodes and encodes the input formats,
//! [`memmap_checks`], [`efi_checks`], [`plan_checks`] and [`pe_checks`]
//! hold the check families with their model oracles, [`fixtures`] the realistic maps and
//! the seeds.
//!
//! The invariants: no panic and no arithmetic overflow (fuzz targets and
//! tests both build with overflow checks), and either a typed error or an
//! output that keeps every promise its documentation makes.

#![allow(
    dead_code,
    unused_imports,
    reason = "every fuzz target includes this file and uses only its own checks"
)]

use std::vec::Vec;

use handoff::efi::{self, Access, AttributesTable, EfiError, Refine, RuntimeRegions, Window};
use handoff::layout::Layout;
use handoff::memmap::{
    self, EfiEntry, EfiMemoryMap, Kind, LimineEntry, LimineMap, MapError, MemoryMap, Scratch,
    Source,
};
use handoff::memtype::{
    MemType, MtrrRegisters, Mtrrs, PageKind, Pat, VariableRangeMsrs, effective_type,
};
use handoff::paging::{BuildError, Builder, Mapping, PageSize};
use handoff::plan::{self, CpuCaps, Inputs, KernelImage, Plan, PlanError};
use handoff::sim::Sim;
use handoff::{Levels, PAGE_SIZE};
use uefi_raw::table::boot::MemoryAttribute;
use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

const PAGE: u64 = PAGE_SIZE;
const TWO_MIB: u64 = 2 << 20;

mod efi_checks;
mod fixtures;
mod input;
mod memmap_checks;
mod pe_checks;
mod plan_checks;

pub use efi_checks::*;
pub use fixtures::*;
pub use input::*;
pub use memmap_checks::*;
pub use pe_checks::*;
pub use plan_checks::*;

/// A fuzz target's check.
pub type Check = fn(&[u8]) -> Reached;

/// The fuzz targets, each with its check.
pub const TARGETS: [(&str, Check); 5] = [
    ("memmap", check_memmap),
    ("normalise", check_normalise),
    ("efi_runtime", check_efi_runtime),
    ("plan", check_plan),
    ("pe", check_pe),
];

/// The same with the strict checks, which tolerate no [`OPEN_BUGS`].
pub const STRICT_TARGETS: [(&str, Check); 5] = [
    ("memmap", check_memmap),
    ("normalise", check_normalise),
    ("efi_runtime", check_efi_runtime_strict),
    ("plan", check_plan_strict),
    ("pe", check_pe),
];
