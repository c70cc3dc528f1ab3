//! Memory types: how a physical address is cached (Intel SDM vol. 3,
//! chapter 12), from the MTRRs and the PAT together.
//!
//! A large page has one memory type for all of it, so no large page may
//! cover physical memory whose *effective* type (the MTRR type combined with
//! the PAT type the entry selects, [`effective_type`]) is not uniform. The
//! kernel reads the MSRs and hands their raw values here:
//!
//! - [`mtrr`]: the MSR numbers, and [`Mtrrs`], which validates the MTRRs
//!   once and then answers type queries over physical memory exactly,
//!   without per-page work;
//! - [`pat`]: the page attribute table ([`Pat`]), and the page-table bits
//!   that select one of its entries;
//! - [`effective_runs`]: the one place that cuts a physical range where its
//!   effective type changes, for the plan's physmap and the EFI window.

use core::fmt;

pub mod mtrr;
pub mod pat;

#[cfg(test)]
mod tests;

pub use mtrr::{MtrrError, MtrrRegisters, Mtrrs, VariableRange, VariableRangeMsrs};
pub use pat::{PageKind, Pat, PatError};

/// A memory type, with its architectural encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemType {
    /// Uncacheable.
    Uc = 0,
    /// Write-combining.
    Wc = 1,
    /// Write-through.
    Wt = 4,
    /// Write-protected.
    Wp = 5,
    /// Write-back.
    Wb = 6,
    /// Uncached, overridable to WC by a WC MTRR: a PAT type only, reserved
    /// in the MTRRs.
    UcMinus = 7,
}

impl MemType {
    /// The type an MTRR field encodes, or `None` for the reserved encodings
    /// (2, 3, 7 and above).
    pub const fn from_mtrr(raw: u8) -> Option<MemType> {
        match raw {
            0 => Some(MemType::Uc),
            1 => Some(MemType::Wc),
            4 => Some(MemType::Wt),
            5 => Some(MemType::Wp),
            6 => Some(MemType::Wb),
            _ => None,
        }
    }

    /// The type a PAT entry encodes, or `None` for the reserved encodings
    /// (2, 3, 8 and above).
    pub const fn from_pat(raw: u8) -> Option<MemType> {
        match raw {
            7 => Some(MemType::UcMinus),
            _ => MemType::from_mtrr(raw),
        }
    }

    /// The architectural encoding.
    pub const fn encoding(self) -> u8 {
        self as u8
    }

    /// The SDM's abbreviation: "UC", "WC", "WT", "WP", "WB", "UC-".
    pub const fn name(self) -> &'static str {
        match self {
            MemType::Uc => "UC",
            MemType::Wc => "WC",
            MemType::Wt => "WT",
            MemType::Wp => "WP",
            MemType::Wb => "WB",
            MemType::UcMinus => "UC-",
        }
    }
}

impl fmt::Display for MemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of memory whose MTRR type is `mtrr` and whose page-table entry
/// selects PAT type `pat` (SDM vol. 3, table "Effective Page-Level Memory
/// Types for Pentium III and More Recent Processor Families"; the Pentium
/// Pro and II had no PAT). The result is never UC-: what UC- means is
/// exactly this combination. `mtrr` = UC- is not an MTRR type; it is taken
/// as UC.
pub const fn effective_type(mtrr: MemType, pat: MemType) -> MemType {
    use MemType::{Uc, UcMinus, Wb, Wc, Wp, Wt};
    match mtrr {
        Uc | UcMinus => match pat {
            Wc => Wc,
            Uc | UcMinus | Wt | Wb | Wp => Uc,
        },
        Wc => match pat {
            Uc | Wt | Wp => Uc,
            UcMinus | Wc | Wb => Wc,
        },
        Wt => match pat {
            Uc | UcMinus => Uc,
            Wc => Wc,
            Wt | Wb => Wt,
            Wp => Wp,
        },
        Wb => match pat {
            Uc | UcMinus => Uc,
            Wc => Wc,
            Wt => Wt,
            Wb => Wb,
            Wp => Wp,
        },
        Wp => match pat {
            Uc => Uc,
            UcMinus | Wc => Wc,
            Wt => Wt,
            Wb | Wp => Wp,
        },
    }
}

/// One run of [`effective_runs`]: `[start, end)` has one effective type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The first physical address.
    pub start: u64,
    /// The end (exclusive).
    pub end: u64,
    /// The effective type of every byte of it.
    pub effective: MemType,
}

/// The maximal runs of one effective memory type that `[start, end)` falls
/// into when mapped with PAT type `pat`, in address order: where the MTRR
/// type changes but the effective type does not (a WB range over a WB
/// default, UC and UC- under a UC PAT type), nothing is cut. Empty for an
/// empty range.
pub fn effective_runs(mtrrs: &Mtrrs, start: u64, end: u64, pat: MemType) -> EffectiveRuns<'_> {
    EffectiveRuns {
        mtrrs,
        at: start,
        end,
        pat,
    }
}

/// The iterator [`effective_runs`] returns.
#[derive(Debug, Clone)]
pub struct EffectiveRuns<'a> {
    mtrrs: &'a Mtrrs,
    at: u64,
    end: u64,
    pat: MemType,
}

impl Iterator for EffectiveRuns<'_> {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        if self.at >= self.end {
            return None;
        }
        let start = self.at;
        let effective = effective_type(self.mtrrs.type_at(start), self.pat);
        let mut cut = start;
        loop {
            cut = self.mtrrs.next_boundary(cut).min(self.end);
            if cut >= self.end || effective_type(self.mtrrs.type_at(cut), self.pat) != effective {
                break;
            }
        }
        self.at = cut;
        Some(Run {
            start,
            end: cut,
            effective,
        })
    }
}

/// The effective type of all of `[start, end)` mapped with PAT type `pat`,
/// or `None` if it changes (or the range is empty).
pub fn uniform_effective(mtrrs: &Mtrrs, start: u64, end: u64, pat: MemType) -> Option<MemType> {
    let mut runs = effective_runs(mtrrs, start, end, pat);
    match (runs.next(), runs.next()) {
        (Some(run), None) => Some(run.effective),
        _ => None,
    }
}
