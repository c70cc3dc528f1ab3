//! Fuzz target `normalise`: memory maps from compact records, which
//! reach the normaliser far more often than raw bytes do.
//!
//! The input format and the invariants live in handoff/tests/common,
//! shared with the corpus replay of handoff/tests/hostile_input.rs.
#![no_main]

#[path = "../../handoff/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_normalise(data);
});
