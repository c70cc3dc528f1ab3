//! Fuzz target `plan`: the plan for maps that parse, with and
//! without the EFI window, built into simulated memory and verified.
//!
//! The input format and the invariants live in handoff/tests/common,
//! shared with the corpus replay of handoff/tests/hostile_input.rs.
#![no_main]

#[path = "../../handoff/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_plan(data);
});
