//! The test switches: `inject=` (damage that a check must catch) and
//! `fault=` (a fault the reports must explain), armed once from the command
//! line in test runs only. The modules they concern ask here whether they
//! are armed; none of them arms another.

use handoff::cmdline::{Fault, Inject, Options};
use log::warn;

static INJECT: spin::Once<Option<Inject>> = spin::Once::new();
static FAULT: spin::Once<Option<Fault>> = spin::Once::new();

/// Arms what the command line asks for, in test runs; outside them says
/// that the switches are ignored.
pub fn arm(options: &Options) {
    let test = options.test;
    INJECT.call_once(|| options.inject.filter(|_| test));
    FAULT.call_once(|| options.fault.filter(|_| test));
    if !test && options.inject.is_some() {
        warn!("cmdline: inject= is honoured in test runs only; ignored");
    }
    if !test && options.fault.is_some() {
        warn!("cmdline: fault= is honoured in test runs only; ignored");
    }
}

/// The armed `inject=`, if any.
pub fn injected() -> Option<Inject> {
    INJECT.get().copied().flatten()
}

/// Whether `inject=` asks for `what`.
pub fn is_injected(what: Inject) -> bool {
    injected() == Some(what)
}

/// The armed `fault=`, if any.
pub fn fault() -> Option<Fault> {
    FAULT.get().copied().flatten()
}
