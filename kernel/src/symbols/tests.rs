//! Self-tests of the symbol index.

use super::*;

/// Self-tests of the symbol index.
pub const TESTS: &[crate::selftest::Test] = &[crate::selftest::Test {
    name: "symbols: functions are named from the kernel's ELF file",
    run: functions_are_named,
}];

fn functions_are_named() -> crate::selftest::TestResult {
    crate::check!(
        STATE.load(Ordering::Acquire) == READY,
        "no symbol index (see the boot log)"
    );
    let me = functions_are_named as fn() -> crate::selftest::TestResult as usize as u64;
    let mut name = crate::fixed::FixedStr::<256>::new();
    let _ = write!(name, "{}", Named::at(me + 1));
    crate::check!(
        name.as_str()
            .starts_with("baton::symbols::tests::functions_are_named+0x1/0x"),
        "this test + 1 is named {name}"
    );
    Ok(())
}
