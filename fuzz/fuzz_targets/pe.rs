//! Fuzz target `pe`: the runtime images' PE/COFF headers, scanned in a
//! runtime-code region and made into the EFI window's permissions.
//!
//! The input format and the invariants live in handoff/tests/common,
//! shared with the corpus replay of handoff/tests/hostile_input.rs.
#![no_main]

#[path = "../../handoff/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_pe(data);
});
