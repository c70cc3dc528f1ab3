//! The firmware's Secure Boot state, read through baton's own runtime
//! services: the `SecureBoot` and `SetupMode` variables (UEFI's globally
//! defined variables, one byte each, readable at runtime).
//!
//! Under Secure Boot the firmware verified Limine's signature, and Limine
//! the hashes of its configuration and of the kernel (when the image was
//! built with `SECURE_BOOT=1`); baton only reports what the firmware says.

use log::{info, warn};
use uefi_raw::table::runtime::{VariableAttributes, VariableVendor};

use super::runtime::VariableError;
use super::{Name, services};

/// What the two variables say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// SecureBoot 1 (and SetupMode 0): the firmware verifies what it boots.
    Enabled,
    /// SecureBoot 0, SetupMode 0: a platform key is enrolled, but the
    /// firmware does not enforce Secure Boot.
    Disabled,
    /// SetupMode 1: no platform key is enrolled, so nothing is verified.
    SetupMode,
    /// No `SecureBoot` variable: the firmware does not support Secure Boot.
    Unsupported,
}

/// The two variables as read: `None` where the firmware has no such
/// variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub secure_boot: Option<u8>,
    pub setup_mode: Option<u8>,
}

impl Reading {
    /// The state the values give.
    pub fn state(&self) -> State {
        match (self.secure_boot, self.setup_mode) {
            (None, _) => State::Unsupported,
            (_, Some(1)) => State::SetupMode,
            (Some(1), _) => State::Enabled,
            _ => State::Disabled,
        }
    }
}

/// What [`report`] read, or why it could not.
static READ: spin::Once<Result<Reading, FailedRead>> = spin::Once::new();

/// Why a variable could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedRead {
    pub variable: &'static str,
    pub error: ReadError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    Variable(VariableError),
    /// Not the one byte the specification gives it.
    Size(usize),
}

impl core::fmt::Display for FailedRead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.error {
            ReadError::Variable(e) => write!(f, "GetVariable({}): {e}", self.variable),
            ReadError::Size(n) => write!(f, "{} has {n} bytes, not 1", self.variable),
        }
    }
}

/// One of the firmware's one-byte global variables, with its attributes;
/// `None` when it does not exist.
fn read(name: &'static str) -> Result<Option<(u8, VariableAttributes)>, FailedRead> {
    let rt = services().expect("called with runtime services only");
    let fail = |error| FailedRead {
        variable: name,
        error,
    };
    let ucs2 = Name::new(name).expect("short ASCII name");
    let mut buf = [0u8; 1];
    match rt.get_variable(&ucs2, &VariableVendor::GLOBAL_VARIABLE.0, &mut buf) {
        Ok((attrs, 1)) => Ok(Some((buf[0], attrs))),
        Ok((_, n)) => Err(fail(ReadError::Size(n))),
        Err(VariableError::TooSmall { needed }) => Err(fail(ReadError::Size(needed))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(fail(ReadError::Variable(e))),
    }
}

fn read_both() -> Result<Reading, FailedRead> {
    Ok(Reading {
        secure_boot: read("SecureBoot")?.map(|(v, _)| v),
        setup_mode: read("SetupMode")?.map(|(v, _)| v),
    })
}

impl core::fmt::Display for Reading {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, (name, value)) in [
            ("SecureBoot", self.secure_boot),
            ("SetupMode", self.setup_mode),
        ]
        .into_iter()
        .enumerate()
        {
            let sep = if i == 0 { "" } else { ", " };
            match value {
                Some(v) => write!(f, "{sep}{name} {v}")?,
                None => write!(f, "{sep}{name} absent")?,
            }
        }
        Ok(())
    }
}

/// Reads and logs the Secure Boot state, once runtime services work (and
/// before the heap exists: nothing here allocates).
pub fn report() {
    if services().is_none() {
        return;
    }
    match *READ.call_once(read_both) {
        Ok(r) => match r.state() {
            State::Enabled => info!("efi: secure boot: enabled ({r})"),
            State::Disabled => info!("efi: secure boot: disabled ({r})"),
            State::SetupMode => info!(
                "efi: secure boot: setup mode ({r}): no platform key enrolled, nothing is verified"
            ),
            State::Unsupported => info!("efi: secure boot: not supported by the firmware ({r})"),
        },
        Err(e) => warn!("efi: secure boot: state unknown: {e}"),
    }
}

mod tests;
pub use tests::TESTS;
