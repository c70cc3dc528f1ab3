//! In-kernel self-tests, run with `test` on the command line.
//!
//! Each test checks one property of the running kernel on the real
//! (emulated) machine. The run ends with a summary line and the verdict
//! goes to QEMU's isa-debug-exit, which the host runner reads.

use log::{error, info};

/// A failed self-test; the failing check has logged why and where.
#[derive(Debug)]
pub struct Failed;

pub type TestResult = Result<(), Failed>;

/// Logs why a test failed, at the caller's location, and yields [`Failed`].
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {{
        log::error!("selftest:   {} ({}:{})", format_args!($($arg)*), file!(), line!());
        $crate::selftest::Failed
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

/// One self-test.
pub struct Test {
    pub name: &'static str,
    pub run: fn() -> TestResult,
}

/// Runs every test; true when all passed.
pub fn run(tests: &[&[Test]]) -> bool {
    let total: usize = tests.iter().map(|t| t.len()).sum();
    info!("selftest: running {total} tests");
    let (mut passed, mut failed) = (0, 0);
    for test in tests.iter().flat_map(|t| t.iter()) {
        match (test.run)() {
            Ok(()) => {
                passed += 1;
                info!("selftest: ok   {}", test.name);
            }
            Err(Failed) => {
                failed += 1;
                error!("selftest: FAIL {}", test.name);
            }
        }
    }
    if failed == 0 {
        info!("selftest: all {total} tests passed");
    } else {
        error!("selftest: {passed} passed, {failed} failed");
    }
    failed == 0
}
