//! Fuzz target `memmap`: the EFI memory map as raw bytes (any
//! `desc_size`, version and length) with raw Limine entries, parsed and
//! normalised.
//!
//! The input format and the invariants live in handoff/tests/common,
//! shared with the corpus replay of handoff/tests/hostile_input.rs.
#![no_main]

#[path = "../../handoff/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_memmap(data);
});
