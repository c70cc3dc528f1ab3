//! Fuzz target `efi_runtime`: runtime-region assignment, the map for
//! SetVirtualAddressMap, the attributes table and the EFI window.
//!
//! The input format and the invariants live in handoff/tests/common,
//! shared with the corpus replay of handoff/tests/hostile_input.rs.
#![no_main]

#[path = "../../handoff/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_efi_runtime(data);
});
