//! Merging the two maps into one [`MemoryMap`].
//!
//! Every input range becomes two events, its start and its end. After one
//! unstable sort (O(n log n), no allocation) a first pass over the events
//! refuses overlapping EFI descriptors, which the parser cannot find once
//! the EFI map is unsorted. A second pass, the sweep, walks the events in
//! address order, keeping a count of open ranges per [`Kind`] and the EFI
//! descriptor currently open (there is at most one: the first pass made
//! sure). Between two consecutive event addresses the winning kind is the
//! greatest kind with a non-zero count, found in at most [`Kind::COUNT`]
//! steps (so O(n log n + n * 14) in all); where every count is zero there
//! is a hole. Each piece is appended to the output, which merges it with
//! its left neighbour when they touch and match. The output comes out
//! sorted and disjoint by construction.

use core::fmt;

use super::efi::EfiMemoryMap;
use super::error::MapError;
use super::limine::{self, LimineMap};
use super::map::{MemoryMap, Region};
use super::policy::Kind;
use super::{MAX_EFI_ENTRIES, MAX_LIMINE_ENTRIES};
use crate::PAGE_SIZE;

/// Events needed for the largest inputs: a start and an end per entry.
const MAX_EVENTS: usize = 2 * (MAX_EFI_ENTRIES + MAX_LIMINE_ENTRIES);

// EFI descriptor indices are stored in 16 bits.
const _: () = assert!(MAX_EFI_ENTRIES <= u16::MAX as usize);

/// Which side of a range an event is. Ends sort first: where one EFI
/// descriptor ends and the next begins, the passes must close the old one
/// before they open the new one, or touching descriptors would look like
/// overlapping ones. (The counts do not care: they are read only once every
/// event at an address has been applied.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    End,
    Start,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    at: u64,
    edge: Edge,
    kind: Kind,
    /// The EFI descriptor the range comes from (16 bits keep an event
    /// at 16 bytes).
    efi: Option<u16>,
}

impl Event {
    const EMPTY: Event = Event {
        at: 0,
        edge: Edge::End,
        kind: Kind::Reserved,
        efi: None,
    };
}

/// Working space for [`build`], sized for the largest inputs. It is large:
/// keep it in a `static` next to the [`MemoryMap`].
pub struct Scratch {
    events: [Event; MAX_EVENTS],
}

impl Scratch {
    /// Fresh scratch space.
    pub const fn new() -> Self {
        Self {
            events: [Event::EMPTY; MAX_EVENTS],
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("capacity", &MAX_EVENTS)
            .finish_non_exhaustive()
    }
}

/// What [`build`] did, for the boot log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// EFI descriptors read (0 on a BIOS boot).
    pub efi_entries: usize,
    /// Limine entries used: all of them on a BIOS boot, only the overlaid
    /// ones on a UEFI boot.
    pub limine_entries: usize,
    /// Regions in the output.
    pub regions: usize,
    /// Whether the EFI map came sorted by address ([`EfiMemoryMap::is_sorted`];
    /// true on a BIOS boot). When it did not, the output is the same, but
    /// the firmware is worth a mention.
    pub efi_sorted: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} EFI descriptors and {} Limine entries -> {} regions",
            self.efi_entries, self.limine_entries, self.regions
        )?;
        if !self.efi_sorted {
            f.write_str("; the EFI map was not sorted")?;
        }
        Ok(())
    }
}

/// Rounds `start..end` to whole pages: inward for the kinds the allocator
/// gets (a partial page may hold something else), outward for the others
/// (a partial page is theirs). `None` when nothing is left.
pub fn round_to_pages(kind: Kind, start: u64, end: u64) -> Option<(u64, u64)> {
    let (start, end) = if kind.is_usable_class() {
        (
            start.next_multiple_of(PAGE_SIZE),
            end / PAGE_SIZE * PAGE_SIZE,
        )
    } else {
        (
            start / PAGE_SIZE * PAGE_SIZE,
            end.next_multiple_of(PAGE_SIZE),
        )
    };
    (start < end).then_some((start, end))
}

/// Whether a Limine entry is laid over the EFI map on a UEFI boot.
///
/// Limine rewrites its own allocations as conventional memory in the EFI
/// map, so only Limine's map says where the kernel, the modules, its own
/// structures and the framebuffer are. Its other types are left out: they
/// repeat what the EFI map says with less detail, and Limine marks the EFI
/// runtime regions RESERVED, which would outrank them and hide them (and
/// their RUNTIME attribute's purpose) from baton.
const fn overlaid_on_efi(ty: u64) -> bool {
    matches!(
        ty,
        limine::BOOTLOADER_RECLAIMABLE | limine::EXECUTABLE_AND_MODULES | limine::FRAMEBUFFER
    )
}

/// Refuses overlapping EFI descriptors, given `events` sorted by address
/// (ends first) and `map`, the EFI map they come from.
///
/// A descriptor that starts while another is open overlaps it; one that
/// starts where another ends does not, since that end comes first. The
/// error is the parser's for a sorted map: it names the later of the two
/// in map order, with the end of the earlier. Stopping at the first overlap
/// leaves at most one descriptor open at a time, which the sweep relies on.
fn check_efi_disjoint(events: &[Event], map: &EfiMemoryMap<'_>) -> Result<(), MapError> {
    let mut open: Option<u16> = None;
    for e in events {
        let Some(index) = e.efi else {
            continue;
        };
        match (e.edge, open) {
            // Only one is open, so it is the one ending.
            (Edge::End, _) => open = None,
            (Edge::Start, None) => open = Some(index),
            (Edge::Start, Some(other)) => {
                let descriptor = |i: u16| {
                    map.get(usize::from(i))
                        .expect("events come from the map's descriptors")
                };
                let entry = descriptor(index.max(other));
                let previous = descriptor(index.min(other));
                return Err(MapError::Overlap {
                    entry: entry.info(),
                    previous: previous.index(),
                    previous_end: previous.end(),
                });
            }
        }
    }
    Ok(())
}

/// Builds the normalised map into `out` from the EFI map (UEFI boots) and
/// Limine's map.
///
/// On a BIOS boot (no EFI map) every Limine entry becomes a region of its
/// kind, without attributes. On a UEFI boot the EFI descriptors give the
/// kinds and attributes, and Limine's bootloader-reclaimable, kernel and
/// framebuffer entries are laid on top; where they cover an EFI descriptor
/// they take its attributes. Overlaps resolve to the greatest [`Kind`],
/// except between EFI descriptors: those are refused with
/// [`MapError::Overlap`], whatever their order in the map (the parser
/// catches them in a sorted map, this catches them in an unsorted one).
///
/// On error `out` is left empty.
pub fn build(
    efi: Option<&EfiMemoryMap<'_>>,
    limine: &LimineMap<'_>,
    scratch: &mut Scratch,
    out: &mut MemoryMap,
) -> Result<Summary, MapError> {
    out.clear();
    let events = &mut scratch.events;
    let mut n = 0;
    let mut add = |kind: Kind, start: u64, end: u64, efi: Option<u16>| {
        if let Some((start, end)) = round_to_pages(kind, start, end) {
            // Cannot overflow: both maps were validated against the maximum
            // entry counts the scratch space is sized for.
            events[n] = Event {
                at: start,
                edge: Edge::Start,
                kind,
                efi,
            };
            events[n + 1] = Event {
                at: end,
                edge: Edge::End,
                kind,
                efi,
            };
            n += 2;
        }
    };

    let mut summary = Summary {
        efi_entries: 0,
        limine_entries: 0,
        regions: 0,
        efi_sorted: true,
    };
    if let Some(map) = efi {
        for e in map.iter() {
            add(e.kind(), e.start(), e.end(), Some(e.index() as u16));
        }
        summary.efi_entries = map.len();
        summary.efi_sorted = map.is_sorted();
    }
    for e in limine.entries() {
        if efi.is_none() || overlaid_on_efi(e.ty) {
            // Validated: the end does not overflow.
            add(e.kind(), e.base, e.base + e.length, None);
            summary.limine_entries += 1;
        }
    }

    let events = &mut scratch.events[..n];
    // The EFI index last makes the order, and so the overlap reported,
    // independent of the sort's whims when descriptors start together.
    events.sort_unstable_by_key(|e| (e.at, e.edge, e.efi));
    if let Some(map) = efi {
        // Before any region is emitted: an overlap must be reported even
        // where the output would fill up first.
        check_efi_disjoint(events, map)?;
    }

    let mut open = [0u32; Kind::COUNT];
    let mut open_efi: Option<u16> = None;
    let mut i = 0;
    while i < events.len() {
        let at = events[i].at;
        while let Some(e) = events.get(i).filter(|e| e.at == at) {
            match e.edge {
                Edge::Start => {
                    open[e.kind.index()] += 1;
                    if e.efi.is_some() {
                        open_efi = e.efi;
                    }
                }
                Edge::End => {
                    open[e.kind.index()] -= 1;
                    // Ends sort before starts and EFI descriptors are
                    // disjoint (checked above), so the open one is the one
                    // ending.
                    if e.efi.is_some() {
                        open_efi = None;
                    }
                }
            }
            i += 1;
        }
        let Some(next) = events.get(i).map(|e| e.at) else {
            break;
        };
        let top = Kind::ALL.iter().rev().find(|k| open[k.index()] > 0);
        if let Some(&kind) = top {
            let region = Region {
                start: at,
                end: next,
                kind,
                attr: open_efi
                    .and_then(|index| efi?.get(usize::from(index)))
                    .map(|e| e.desc().att),
            };
            if let Err(err) = out.push(region) {
                out.clear();
                return Err(err);
            }
        }
    }
    summary.regions = out.regions().len();
    Ok(summary)
}
