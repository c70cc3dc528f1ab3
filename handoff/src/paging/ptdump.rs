//! A dump of the page tables in the format of Linux's
//! `arch/x86/mm/dump_pagetables.c` (`/sys/kernel/debug/page_tables`), so
//! that baton's layout can be read side by side with a Linux boot.
//!
//! The walk covers the whole address space, holes included, and merges
//! consecutive entries with the same protection and level into one line:
//!
//! ```text
//! ---[ High Kernel Mapping ]---
//! 0xffffffff80000000-0xffffffff80200000           2M     ro         PSE     GLB x  pmd
//! ```
//!
//! Deliberate differences from Linux:
//!
//! - only the bits a line shows (and PRESENT) take part in merging: the CPU
//!   sets ACCESSED/DIRTY as it goes, and baton does not preset them as
//!   Linux's `PAGE_KERNEL` does;
//! - every non-present entry counts as empty;
//! - the non-canonical hole is noted as empty entries at its own start, so
//!   an empty lower-half run stretches over it to the first upper-half
//!   address as in Linux, but a mapped run at the top of the lower half
//!   ends at the hole (`0x0000800000000000`) where Linux's would reach
//!   `0xffff800000000000`;
//! - a marker inside one entry (an empty top-level or PUD entry, say)
//!   splits the entry's run at the marker, so that every marker prints at
//!   its own address even where nothing around it is mapped (Linux prints
//!   it at the next entry boundary, and its fixmap and modules area always
//!   have tables, so its markers land there too);
//! - every marker the walk passes is printed, where Linux prints one per
//!   run;
//! - no guard-hole skip, no per-marker line limits.

use core::fmt;

use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::pages::{PAT_LARGE, entry_shift, raw};
use super::walker::Walker;
use crate::Levels;
use crate::phys::PhysWindow;

const PRESENT: u64 = PageTableFlags::PRESENT.bits();
const RW: u64 = PageTableFlags::WRITABLE.bits();
const USER: u64 = PageTableFlags::USER_ACCESSIBLE.bits();
const PWT: u64 = PageTableFlags::WRITE_THROUGH.bits();
const PCD: u64 = PageTableFlags::NO_CACHE.bits();
/// PSE in a table above the page table, PAT in a page table.
const BIT7: u64 = PageTableFlags::HUGE_PAGE.bits();
const GLOBAL: u64 = PageTableFlags::GLOBAL.bits();
const NX: u64 = PageTableFlags::NO_EXECUTE.bits();

/// The protection bits a line shows.
const SHOWN: u64 = PRESENT | RW | USER | PWT | PCD | BIT7 | GLOBAL | NX;

/// A run of entries with the same protection at the same level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// The first address.
    pub start: u64,
    /// The address after the last (0 at the top of the address space).
    pub end: u64,
    /// The entries' own protection bits ([`SHOWN`], plus bit 12 of a large
    /// leaf); 0 for empty entries.
    pub prot: u64,
    /// The protection in effect through every level: user and writable
    /// only if all levels allow it, no-execute if any level says so.
    pub effective: u64,
    /// The level of the table holding the entries (1 = page table).
    pub level: u8,
}

impl Run {
    /// Whether the run maps pages both writable and executable.
    pub fn is_wx(&self) -> bool {
        self.prot & PRESENT != 0 && self.effective & RW != 0 && self.effective & NX == 0
    }
}

/// What the range walk reports, in address order.
pub(crate) enum Event<'m> {
    /// The walk has reached a marker.
    Marker(&'m str),
    /// A finished run.
    Run(Run),
}

/// Merges entries into runs as Linux's `note_page` does.
struct Merger<'m, F> {
    markers: &'m [(u64, &'m str)],
    next_marker: usize,
    /// The run being built, if the walk has started.
    current: Option<Run>,
    sink: F,
}

impl<'m, E, F: FnMut(Event<'m>) -> Result<(), E>> Merger<'m, F> {
    /// Notes entries from `addr` on with protection `prot` at `level`.
    fn note(&mut self, addr: u64, prot: u64, effective: u64, level: u8) -> Result<(), E> {
        let Some(current) = self.current else {
            self.markers_up_to(addr)?;
            self.start(addr, prot, effective, level);
            return Ok(());
        };
        let crossing = self
            .markers
            .get(self.next_marker)
            .is_some_and(|&(start, _)| addr >= start);
        if prot != current.prot
            || effective != current.effective
            || level != current.level
            || crossing
        {
            (self.sink)(Event::Run(Run {
                end: addr,
                ..current
            }))?;
            self.markers_up_to(addr)?;
            self.start(addr, prot, effective, level);
        }
        Ok(())
    }

    /// Notes the markers strictly inside the entry at `addr` spanning
    /// `span` bytes (the last entry wraps to 0), splitting its run there.
    fn split_at_markers(
        &mut self,
        addr: u64,
        span: u64,
        prot: u64,
        effective: u64,
        level: u8,
    ) -> Result<(), E> {
        while let Some(&(start, _)) = self.markers.get(self.next_marker) {
            let offset = start.wrapping_sub(addr);
            // Only page-aligned markers split: Linux's end-of-space marker
            // (-1) ends the list without ever printing.
            if start <= addr || offset >= span || start & 0xfff != 0 {
                break;
            }
            self.note(start, prot, effective, level)?;
        }
        Ok(())
    }

    fn start(&mut self, addr: u64, prot: u64, effective: u64, level: u8) {
        self.current = Some(Run {
            start: addr,
            end: addr,
            prot,
            effective,
            level,
        });
    }

    fn markers_up_to(&mut self, addr: u64) -> Result<(), E> {
        while let Some(&(start, name)) = self.markers.get(self.next_marker) {
            if start > addr {
                break;
            }
            (self.sink)(Event::Marker(name))?;
            self.next_marker += 1;
        }
        Ok(())
    }
}

impl<W: PhysWindow + ?Sized> Walker<'_, W> {
    /// Walks the whole address space as Linux's `ptdump_walk_pgd_level_core`
    /// does, reporting runs and markers (`(start, name)`, ascending) to
    /// `sink`.
    pub(crate) fn runs<'m, E>(
        &self,
        markers: &'m [(u64, &'m str)],
        sink: impl FnMut(Event<'m>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut merger = Merger {
            markers,
            next_marker: 0,
            current: None,
            sink,
        };
        let top = self.levels().count() as u8;
        // The top level has nothing above it to take away permissions.
        self.walk_runs(&mut merger, self.root(), top, 0, USER | RW)?;
        // The address after the last wraps to 0, as in Linux; level 0
        // differs from every level, which flushes the last run.
        merger.note(0, 0, 0, 0)
    }

    fn walk_runs<'m, E, F: FnMut(Event<'m>) -> Result<(), E>>(
        &self,
        merger: &mut Merger<'m, F>,
        frame: PhysFrame,
        level: u8,
        base: u64,
        above: u64,
    ) -> Result<(), E> {
        let levels: Levels = self.levels();
        let top = levels.count() as u8;
        let table = self.window().table(frame);
        let shift = entry_shift(level);
        for (i, entry) in table.iter().enumerate() {
            if level == top && i == 256 {
                // The non-canonical hole: empty entries from its start, so
                // that a mapped run at the top of the lower half ends there
                // (an empty one merges with it).
                merger.note(1 << (levels.va_bits() - 1), 0, 0, level)?;
            }
            let offset = (i as u64) << shift;
            let addr = if level == top {
                levels.sign_extend(offset)
            } else {
                base + offset
            };
            let raw = raw(entry);
            let span = 1u64 << shift;
            if raw & PRESENT == 0 {
                merger.note(addr, 0, 0, level)?;
                merger.split_at_markers(addr, span, 0, 0, level)?;
                continue;
            }
            let large = level > 1 && raw & BIT7 != 0;
            let prot = (raw & SHOWN) | if large { raw & PAT_LARGE.bits() } else { 0 };
            let effective = (above & prot & (USER | RW)) | ((above | prot) & NX);
            if level == 1 || large {
                merger.note(addr, prot, effective, level)?;
                merger.split_at_markers(addr, span, prot, effective, level)?;
            } else {
                let child = PhysFrame::containing_address(entry.addr());
                self.walk_runs(merger, child, level - 1, addr, effective)?;
            }
        }
        Ok(())
    }

    /// Writes the dump to `out`, with a `---[ name ]---` line where the walk
    /// reaches each of `markers` (`(start, name)`, in ascending order of
    /// sign-extended address).
    pub fn ptdump(&self, out: &mut dyn fmt::Write, markers: &[(u64, &str)]) -> fmt::Result {
        let levels = self.levels();
        self.runs(markers, |event| match event {
            Event::Marker(name) => writeln!(out, "---[ {name} ]---"),
            Event::Run(run) => write_run(out, &run, levels),
        })
    }
}

/// The size of `start..end` as Linux's `note_page` prints it: the largest
/// unit that divides it, `(value, unit)`.
pub(crate) fn human_size(start: u64, end: u64) -> (u64, char) {
    const UNITS: &[u8] = b"BKMGTPE";
    let mut size = end.wrapping_sub(start);
    let mut unit = 0;
    if size == 0 {
        // A run over the whole address space (no tables, no markers): 2^64.
        (size, unit) = (16, UNITS.len() - 1);
    }
    while size & 1023 == 0 && unit + 1 < UNITS.len() {
        size >>= 10;
        unit += 1;
    }
    (size, char::from(UNITS[unit]))
}

/// The columns of Linux's `printk_prot` for a present run's protection
/// `prot` at `level`: `(set, shown when set, shown when clear)`, without
/// padding.
pub(crate) fn prot_columns(prot: u64, level: u8) -> [(bool, &'static str, &'static str); 8] {
    let pat = match level {
        1 => prot & BIT7 != 0,
        2 | 3 => prot & PAT_LARGE.bits() != 0,
        _ => false,
    };
    [
        (prot & USER != 0, "USR", ""),
        (prot & RW != 0, "RW", "ro"),
        (prot & PWT != 0, "PWT", ""),
        (prot & PCD != 0, "PCD", ""),
        (level > 1 && prot & BIT7 != 0, "PSE", ""),
        (pat, "PAT", ""),
        (prot & GLOBAL != 0, "GLB", ""),
        (prot & NX != 0, "NX", "x"),
    ]
}

/// One line of the dump, as Linux's `note_page` and `printk_prot` print it.
fn write_run(out: &mut dyn fmt::Write, run: &Run, levels: Levels) -> fmt::Result {
    let (size, unit) = human_size(run.start, run.end);
    write!(
        out,
        "0x{:016x}-0x{:016x}   {size:9}{unit} ",
        run.start, run.end
    )?;
    if run.prot & PRESENT == 0 {
        out.write_str("                              ")?;
    } else {
        // Linux pads each column to its widest value plus a space.
        for (set, yes, no) in prot_columns(run.prot, run.level) {
            let shown = if set { yes } else { no };
            let width = yes.len().max(no.len()) + 1;
            write!(out, "{shown:width$}")?;
        }
    }
    writeln!(out, "{}", level_name(run.level, levels))
}

/// Linux's name for the table level: with 4 levels the PML4 is the `pgd`
/// (the `p4d` is folded into it), with 5 the PML5 is and the PML4 is the
/// `p4d`.
pub fn level_name(level: u8, levels: Levels) -> &'static str {
    match (level, levels) {
        (1, _) => "pte",
        (2, _) => "pmd",
        (3, _) => "pud",
        (4, Levels::Five) => "p4d",
        (4, Levels::Four) | (5, _) => "pgd",
        _ => "cr3",
    }
}
