//! Self-tests of reading the Secure Boot state.

use super::*;
use crate::selftest::{Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[Test {
    name: "efi: SecureBoot and SetupMode read through GetVariable",
    run: variables_read,
}];

/// With runtime services, both variables were read (a firmware error
/// fails), a second read agrees, the values are ones the specification
/// allows, and a variable reported absent is absent from the firmware's
/// list too. Without them, nothing was read.
fn variables_read() -> TestResult {
    let Some(rt) = services() else {
        check!(
            READ.get().is_none(),
            "the Secure Boot state was read without runtime services"
        );
        return Ok(());
    };
    let first = READ
        .get()
        .ok_or_else(|| fail!("the Secure Boot state was never read"))?
        .map_err(|e| fail!("{e}"))?;
    let again = read_both().map_err(|e| fail!("{e}"))?;
    check!(first == again, "read {first:?}, then {again:?}");
    for (name, value) in [
        ("SecureBoot", first.secure_boot),
        ("SetupMode", first.setup_mode),
    ] {
        check!(
            value.is_none_or(|v| v <= 1),
            "{name} is {value:?}, not 0 or 1"
        );
        if let Some((_, attrs)) = read(name).map_err(|e| fail!("{e}"))? {
            check!(
                attrs.contains(VariableAttributes::RUNTIME_ACCESS),
                "{name} has attributes {attrs:?}, without RUNTIME_ACCESS"
            );
        }
    }
    check!(
        !(first.secure_boot == Some(1) && first.setup_mode == Some(1)),
        "SecureBoot 1 in setup mode"
    );
    if first.secure_boot.is_none() {
        let mut listed = false;
        rt.for_each_variable(|name, vendor| {
            let mut s = crate::fixed::FixedStr::<128>::new();
            let _ = core::fmt::write(&mut s, format_args!("{name}"));
            listed |= s.as_str() == "SecureBoot" && *vendor == VariableVendor::GLOBAL_VARIABLE.0;
        })
        .map_err(|e| fail!("GetNextVariableName: {e}"))?;
        check!(
            !listed,
            "GetVariable found no SecureBoot, but the firmware lists one"
        );
    }
    Ok(())
}
