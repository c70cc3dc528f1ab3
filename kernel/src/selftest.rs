//! In-kernel self-tests, run with `test` on the command line.
//!
//! Each test checks one property of the running kernel on the real
//! (emulated) machine. A test whose subject is absent here (no second CPU
//! for a shootdown, no runtime services on a BIOS boot) says so with
//! [`skip!`] and is counted as skipped, never as passed. The run ends with
//! a summary line and the verdict goes to QEMU's isa-debug-exit, which the
//! host runner reads: pass when nothing failed.

use core::fmt::Write;

use log::{error, info};

use crate::fixed::FixedStr;

/// Why a self-test did not pass.
#[derive(Debug)]
pub enum NotPassed {
    /// A check failed; it has logged why and where.
    Failed,
    /// The test's subject is absent on this machine, for this reason.
    Skipped(FixedStr<96>),
}

pub type TestResult = Result<(), NotPassed>;

/// Logs why a test failed, at the caller's location, and yields
/// [`NotPassed::Failed`].
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {{
        log::error!("selftest:   {} ({}:{})", format_args!($($arg)*), file!(), line!());
        $crate::selftest::NotPassed::Failed
    }};
}

/// Fails the test unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::fail!($($arg)*));
        }
    };
}

/// Ends the test as skipped: its subject is absent here, for the reason
/// given (logged on the summary line of the test).
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {
        return Err($crate::selftest::skipped(format_args!($($arg)*)))
    };
}

/// [`NotPassed::Skipped`] with `reason` (for [`skip!`]).
pub fn skipped(reason: core::fmt::Arguments<'_>) -> NotPassed {
    let mut text = FixedStr::new();
    let _ = text.write_fmt(reason);
    NotPassed::Skipped(text)
}

/// One self-test.
pub struct Test {
    pub name: &'static str,
    pub run: fn() -> TestResult,
}

/// Runs every test; true when none failed.
pub fn run(tests: &[&[Test]]) -> bool {
    let total: usize = tests.iter().map(|t| t.len()).sum();
    info!("selftest: running {total} tests");
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for test in tests.iter().flat_map(|t| t.iter()) {
        match (test.run)() {
            Ok(()) => {
                passed += 1;
                info!("selftest: ok   {}", test.name);
            }
            Err(NotPassed::Skipped(why)) => {
                skipped += 1;
                info!("selftest: skip {} ({why})", test.name);
            }
            Err(NotPassed::Failed) => {
                failed += 1;
                error!("selftest: FAIL {}", test.name);
            }
        }
    }
    let summary = format_args!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        info!("selftest: {total} tests: {summary}");
    } else {
        error!("selftest: {total} tests: {summary}");
    }
    failed == 0
}
