//! The W^X check, as Linux's `ptdump_walk_pgd_level_checkwx`: no page may be
//! both writable and executable.
//!
//! The check uses the protection in effect through every level (a
//! read-only or no-execute table entry covers all below it), and reports
//! each offending run of the ptdump walk, merged as the dump merges lines.

use core::convert::Infallible;
use core::fmt;

use super::ptdump::{Event, human_size, level_name, prot_columns};
use super::walker::Walker;
use crate::phys::PhysWindow;
use crate::{Levels, PAGE_SIZE};

/// The summary line of a check that found nothing.
pub const WX_PASSED: &str = "x86/mm: Checked W+X mappings: passed, no W+X pages found.";

/// A run of pages that are writable and executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WxRange {
    /// The first address.
    pub start: u64,
    /// The address after the last (0 at the top of the address space).
    pub end: u64,
    /// The level of the table holding the entries (1 = page table).
    pub level: u8,
    /// The entries' own protection bits, as ptdump shows them (present,
    /// RW, user, PWT, PCD, PSE/PAT, global, NX; bit 12 of a large page).
    pub prot: u64,
    /// The paging mode, which names the level.
    pub levels: Levels,
}

impl WxRange {
    /// The 4 KiB pages in the range.
    pub fn pages(&self) -> u64 {
        self.end.wrapping_sub(self.start) / PAGE_SIZE
    }
}

/// Linux's warning for the range (`x86/mm: Found insecure W+X mapping at
/// address 0x…`), completed with the end of the range and, as its ptdump
/// line shows them, its size, protection and level:
/// `x86/mm: Found insecure W+X mapping at address
/// 0xffffffff80000000-0xffffffff80400000 (4M RW PSE GLB x pmd)`.
impl fmt::Display for WxRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (size, unit) = human_size(self.start, self.end);
        write!(
            f,
            "x86/mm: Found insecure W+X mapping at address {:#x}-{:#x} ({size}{unit}",
            self.start, self.end
        )?;
        for (set, yes, no) in prot_columns(self.prot, self.level) {
            let shown = if set { yes } else { no };
            if !shown.is_empty() {
                write!(f, " {shown}")?;
            }
        }
        write!(f, " {})", level_name(self.level, self.levels))
    }
}

/// The outcome of a check: how many W+X pages it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WxSummary {
    /// W+X pages, in 4 KiB units.
    pub pages: u64,
}

impl WxSummary {
    /// Whether the check found no W+X page.
    pub fn passed(&self) -> bool {
        self.pages == 0
    }
}

/// Linux's summary line: [`WX_PASSED`], or
/// `x86/mm: Checked W+X mappings: FAILED, {n} W+X pages found.`
impl fmt::Display for WxSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed() {
            f.write_str(WX_PASSED)
        } else {
            write!(
                f,
                "x86/mm: Checked W+X mappings: FAILED, {} W+X pages found.",
                self.pages
            )
        }
    }
}

impl<W: PhysWindow + ?Sized> Walker<'_, W> {
    /// Finds the pages that are writable and executable: calls `report` for
    /// each merged run of them and returns the count of pages.
    pub fn check_wx(&self, mut report: impl FnMut(&WxRange)) -> WxSummary {
        let mut pages = 0;
        let walked = self.runs::<Infallible>(&[], |event| {
            if let Event::Run(run) = event
                && run.is_wx()
            {
                let range = WxRange {
                    start: run.start,
                    end: run.end,
                    level: run.level,
                    prot: run.prot,
                    levels: self.levels(),
                };
                pages += range.pages();
                report(&range);
            }
            Ok(())
        });
        let Ok(()) = walked;
        WxSummary { pages }
    }
}
