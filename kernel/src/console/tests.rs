//! Self-test of the consoles: no line is lost when the screen cannot
//! draw it.

use log::info;

use crate::check;
use crate::selftest::{Test, TestResult};

pub const TESTS: &[Test] = &[Test {
    name: "log: the serial port takes the log while the screen cannot draw it",
    run: serial_takes_over,
}];

/// With `console=fb` alone, pauses the screen (as the framebuffer's
/// self-test does) and logs a line: the serial port must get it.
fn serial_takes_over() -> TestResult {
    if super::serial_asked() {
        crate::skip!("the serial port has the whole log anyway");
    }
    if !super::fb::draws() {
        crate::skip!("the screen does not draw: the serial port has the log");
    }
    let wanted = super::fb::paused(|| {
        info!("log: the screen is paused: this line reaches the serial port alone");
        super::serial_wanted()
    });
    check!(
        wanted,
        "the serial port was off while the screen was paused"
    );
    check!(
        !super::serial_wanted(),
        "the serial port stayed on once the screen drew again"
    );
    Ok(())
}
