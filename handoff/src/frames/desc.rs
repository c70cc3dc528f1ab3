//! The per-frame descriptor and the store that holds them.

use core::fmt;
use core::ops::Range;

use x86_64::structures::paging::PhysFrame;

use crate::memmap::{Allocatable, Kind};

/// The bytes of one [`FrameDesc`]: 128 descriptors to a 4 KiB page, and
/// never one straddling two pages.
pub const DESC_SIZE: u64 = 32;

/// The free-list link that points nowhere.
pub(super) const NIL: u64 = u64::MAX;

// State bytes. Zero is what a freshly zeroed vmemmap page holds: no state.
const TAIL: u8 = 1;
const FREE: u8 = 2;
const ALLOCATED: u8 = 3;
const RESERVED: u8 = 0x10;

/// Why a RAM frame is not the allocator's to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The kernel image and modules ([`Kind::Kernel`]).
    Kernel,
    /// ACPI tables ([`Kind::AcpiReclaimable`]), which baton keeps.
    AcpiTables,
    /// ACPI non-volatile storage ([`Kind::AcpiNvs`]).
    AcpiNvs,
    /// EFI runtime-services code ([`Kind::RuntimeCode`]).
    EfiRuntimeCode,
    /// EFI runtime-services data ([`Kind::RuntimeData`]).
    EfiRuntimeData,
    /// EFI boot-services memory ([`Kind::BootServices`]), until
    /// [`release`](super::FrameAllocator::release) after the EFI handoff.
    BootServices,
    /// Limine's memory ([`Kind::BootloaderReclaimable`]), until
    /// [`release`](super::FrameAllocator::release) after the CR3 switch.
    Bootloader,
    /// Page tables the kernel built before the allocator existed (an
    /// [`Exclusion`](super::Exclusion)).
    PageTables,
    /// The frames backing the vmemmap itself (an
    /// [`Exclusion`](super::Exclusion)).
    Vmemmap,
    /// Anything else the kernel took before the allocator existed (an
    /// [`Exclusion`](super::Exclusion)).
    EarlyAlloc,
    /// The first 64 KiB, kept back as Linux keeps them: real-mode data
    /// lives there and some firmware writes page 0 (an
    /// [`Exclusion`](super::Exclusion)).
    LowMemory,
}

impl Reason {
    /// Every reason, in [`index`](Self::index) order.
    pub const ALL: [Reason; 11] = [
        Reason::Kernel,
        Reason::AcpiTables,
        Reason::AcpiNvs,
        Reason::EfiRuntimeCode,
        Reason::EfiRuntimeData,
        Reason::BootServices,
        Reason::Bootloader,
        Reason::PageTables,
        Reason::Vmemmap,
        Reason::EarlyAlloc,
        Reason::LowMemory,
    ];

    /// The number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// The position of the reason in [`Reason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Why memory of `kind` is held back at initialisation: `None` for the
    /// memory that starts free ([`Allocatable::Now`]) and for what is not
    /// RAM (it has no descriptors).
    pub const fn from_kind(kind: Kind) -> Option<Reason> {
        match kind {
            Kind::Usable => None,
            Kind::BootServices => Some(Reason::BootServices),
            Kind::BootloaderReclaimable => Some(Reason::Bootloader),
            Kind::Kernel => Some(Reason::Kernel),
            Kind::AcpiReclaimable => Some(Reason::AcpiTables),
            Kind::AcpiNvs => Some(Reason::AcpiNvs),
            Kind::RuntimeData => Some(Reason::EfiRuntimeData),
            Kind::RuntimeCode => Some(Reason::EfiRuntimeCode),
            Kind::SoftReserved
            | Kind::Persistent
            | Kind::Unaccepted
            | Kind::Framebuffer
            | Kind::Reserved
            | Kind::Mmio
            | Kind::Bad => None,
        }
    }

    /// Whether the kernel may give this reason to an
    /// [`Exclusion`](super::Exclusion). The others come from the memory
    /// map; an exclusion under [`BootServices`](Self::BootServices) or
    /// [`Bootloader`](Self::Bootloader) would be freed by a release.
    pub const fn is_exclusion(self) -> bool {
        matches!(
            self,
            Reason::PageTables | Reason::Vmemmap | Reason::EarlyAlloc | Reason::LowMemory
        )
    }

    /// Whether a [`release`](super::FrameAllocator::release) frees memory
    /// held back for this reason.
    pub const fn is_releasable(self) -> bool {
        matches!(self, Reason::BootServices | Reason::Bootloader)
    }

    const fn from_index(i: usize) -> Option<Reason> {
        if i < Self::COUNT {
            Some(Self::ALL[i])
        } else {
            None
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Kernel => "kernel",
            Reason::AcpiTables => "ACPI tables",
            Reason::AcpiNvs => "ACPI NVS",
            Reason::EfiRuntimeCode => "EFI runtime code",
            Reason::EfiRuntimeData => "EFI runtime data",
            Reason::BootServices => "EFI boot services",
            Reason::Bootloader => "bootloader",
            Reason::PageTables => "page tables",
            Reason::Vmemmap => "vmemmap",
            Reason::EarlyAlloc => "early allocations",
            Reason::LowMemory => "the first 64 KiB",
        })
    }
}

// The policy and the reasons agree on what a release frees.
const _: () = {
    let mut i = 0;
    while i < Kind::COUNT {
        let kind = Kind::ALL[i];
        let pending = matches!(
            kind.policy().allocatable,
            Allocatable::AfterCr3Switch | Allocatable::AfterEfiHandoff
        );
        match Reason::from_kind(kind) {
            Some(reason) => assert!(kind.is_ram() && reason.is_releasable() == pending),
            None => {
                assert!(!kind.is_ram() || matches!(kind.policy().allocatable, Allocatable::Now))
            }
        }
        i += 1;
    }
};

/// What a descriptor says about its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DescState {
    /// The first frame of a free block of `2^order` frames, on a free list.
    Free {
        /// The block's order.
        order: u8,
    },
    /// The first frame of an allocated block of `2^order` frames.
    Allocated {
        /// The block's order.
        order: u8,
    },
    /// A frame that no longer heads a block: merged into one that starts
    /// at a lower frame, or released and not yet in a block.
    Tail,
    /// A frame the allocator never hands out, or not yet.
    Reserved(Reason),
    /// A value the allocator never writes: the descriptor was not
    /// initialised (a zeroed page holds 0) or has been corrupted.
    Invalid(u8),
}

/// The descriptor of one 4 KiB frame of RAM, as the kernel's vmemmap holds
/// it at `vmemmap_base + pfn * DESC_SIZE`.
///
/// Only the frames the allocator has reached have one that means
/// anything: the first frame of every block (free or allocated, but for
/// free 1 GiB blocks, which have a [`GibRecord`]) and every reserved
/// frame. The other frames of a free block have never been written (their
/// part of the vmemmap may not even be backed), nor need to be: a frame's
/// block is found from the heads above it
/// ([`FrameAllocator::state`](super::FrameAllocator::state)).
///
/// Plain integers only, so any bytes are a valid descriptor (a zeroed page
/// reads as [`DescState::Invalid`]), and 32 bytes, so that descriptors pack
/// a page exactly.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameDesc {
    /// The next block on the same free list, as a PFN ([`NIL`] at the end).
    next: u64,
    /// The previous block on the same free list ([`NIL`] at the head).
    prev: u64,
    /// The state byte (see [`DescState`]).
    state: u8,
    /// The block's order, in a block's first frame.
    order: u8,
    /// Room for what later services keep per frame (a reference count,
    /// slab state); zero for now.
    spare: [u8; 14],
}

const _: () = assert!(core::mem::size_of::<FrameDesc>() == DESC_SIZE as usize);
const _: () = assert!(core::mem::align_of::<FrameDesc>() == 8);

impl FrameDesc {
    /// A zeroed descriptor: what a fresh vmemmap page holds.
    pub const ZEROED: FrameDesc = FrameDesc {
        next: 0,
        prev: 0,
        state: 0,
        order: 0,
        spare: [0; 14],
    };

    /// What a test store holds where nothing was written: looks like the
    /// head of a free block of order 3 on a list, so that a descriptor the
    /// allocator reads before writing misleads it rather than passing
    /// unseen.
    #[cfg(test)]
    pub(super) const GARBAGE: FrameDesc = FrameDesc {
        next: 0,
        prev: 0,
        state: FREE,
        order: 3,
        spare: [0xa5; 14],
    };

    /// A descriptor for the allocator to fill in: unlinked, `state`.
    pub(super) const fn new(state: DescState) -> FrameDesc {
        let mut desc = FrameDesc {
            next: NIL,
            prev: NIL,
            state: 0,
            order: 0,
            spare: [0; 14],
        };
        desc.set_state(state);
        desc
    }

    /// What the descriptor says.
    pub const fn state(&self) -> DescState {
        match self.state {
            TAIL => DescState::Tail,
            FREE => DescState::Free { order: self.order },
            ALLOCATED => DescState::Allocated { order: self.order },
            s if s >= RESERVED => match Reason::from_index((s - RESERVED) as usize) {
                Some(reason) => DescState::Reserved(reason),
                None => DescState::Invalid(s),
            },
            s => DescState::Invalid(s),
        }
    }

    /// Changes the state, keeping the links.
    pub(super) const fn set_state(&mut self, state: DescState) {
        let (byte, order) = match state {
            DescState::Tail => (TAIL, 0),
            DescState::Free { order } => (FREE, order),
            DescState::Allocated { order } => (ALLOCATED, order),
            DescState::Reserved(reason) => (RESERVED + reason.index() as u8, 0),
            DescState::Invalid(byte) => (byte, 0),
        };
        self.state = byte;
        self.order = order;
    }

    /// Whether the frame heads a free block of exactly `order`.
    pub(super) const fn is_free_block(&self, order: u8) -> bool {
        self.state == FREE && self.order == order
    }

    pub(super) const fn next(&self) -> u64 {
        self.next
    }

    pub(super) const fn prev(&self) -> u64 {
        self.prev
    }

    pub(super) const fn set_next(&mut self, pfn: u64) {
        self.next = pfn;
    }

    pub(super) const fn set_prev(&mut self, pfn: u64) {
        self.prev = pfn;
    }
}

impl fmt::Debug for FrameDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("FrameDesc");
        d.field("state", &self.state());
        if matches!(self.state(), DescState::Free { .. }) {
            d.field("prev", &self.prev).field("next", &self.next);
        }
        d.finish()
    }
}

/// The bytes of one [`GibRecord`].
pub const GIB_RECORD_SIZE: u64 = 16;

/// The record of one naturally aligned GiB of RAM: whether it is a free
/// block of the largest order, and the next such block on that free list.
///
/// Free 1 GiB blocks live here rather than in their first frame's
/// descriptor, 256 to a page: a terabyte of free memory is 16 KiB of
/// records, where descriptors at block heads would take a page of
/// descriptors (and a page table) per GiB, 8 MiB apart in the vmemmap.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GibRecord {
    /// The next free GiB's first PFN ([`NIL`] at the end).
    next: u64,
    /// [`FREE_GIB`] when the GiB is a free block, 0 otherwise.
    free: u64,
}

/// What [`GibRecord::free`] holds for a free GiB: not just any non-zero
/// value, so that a corrupted record is told from a free one.
const FREE_GIB: u64 = 0x6672_6565_2047_6942;

const _: () = assert!(core::mem::size_of::<GibRecord>() == GIB_RECORD_SIZE as usize);

impl GibRecord {
    /// The record of a GiB that is not a free block.
    pub const TAKEN: GibRecord = GibRecord { next: NIL, free: 0 };

    /// The record of a free GiB, before `next` on the list.
    pub(super) const fn free(next: u64) -> GibRecord {
        GibRecord {
            next,
            free: FREE_GIB,
        }
    }

    /// Whether the GiB is a free block.
    pub const fn is_free(&self) -> bool {
        self.free == FREE_GIB
    }

    pub(super) const fn next(&self) -> u64 {
        self.next
    }
}

/// The store could not back a descriptor: it has no frame left for the
/// vmemmap page (or a page table under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoBacking {
    /// The frame whose descriptor stays unbacked.
    pub pfn: u64,
}

/// Where the descriptors live: the kernel's vmemmap, host memory in tests.
///
/// Only RAM frames below the allocator's limit have descriptors, and only
/// those the allocator has [backed](Self::back) can be read or written; the
/// allocator never asks for any other. Each PFN must reach its own
/// descriptor, the same every time: the allocator's answers, and the
/// kernel's trust in the frames it hands out, rest on that.
///
/// A store that needs frames to back descriptors (the kernel's, which maps
/// vmemmap pages) keeps a reserve of them, which the allocator tops up
/// after each allocation ([`wants`](Self::wants), [`give`](Self::give)):
/// backing happens in the middle of an allocation, when the allocator
/// cannot hand out anything.
pub trait Descriptors {
    /// The descriptor of frame `pfn` (physical address / 4096), backed.
    fn desc(&self, pfn: u64) -> &FrameDesc;

    /// The descriptor of frame `pfn`, backed, for writing.
    fn desc_mut(&mut self, pfn: u64) -> &mut FrameDesc;

    /// Writes `value` into the descriptors of `pfns`, which are all
    /// backed. A store over contiguous memory can make it one slice fill.
    fn fill(&mut self, pfns: Range<u64>, value: FrameDesc) {
        for pfn in pfns {
            *self.desc_mut(pfn) = value;
        }
    }

    /// The record of the GiB `gib` (its first PFN >> [`MAX_ORDER`]),
    /// backed.
    ///
    /// [`MAX_ORDER`]: super::MAX_ORDER
    fn gib(&self, gib: u64) -> &GibRecord;

    /// The record of the GiB `gib`, backed, for writing.
    fn gib_mut(&mut self, gib: u64) -> &mut GibRecord;

    /// Makes the records of the GiBs `gibs` (all RAM below the limit) safe
    /// to read and write, as [`back`](Self::back) does for descriptors.
    ///
    /// # Errors
    ///
    /// No frame left to back a page with.
    fn back_gibs(&mut self, gibs: Range<u64>) -> Result<(), NoBacking>;

    /// Makes the descriptors of `pfns` (RAM frames below the limit) safe to
    /// read and write: backs the part of the vmemmap that holds them where
    /// it is not backed yet. What it backs reads as zeroes (or anything
    /// else: the allocator writes a descriptor before it reads it).
    ///
    /// # Errors
    ///
    /// No frame left to back a page with; what was backed stays backed.
    fn back(&mut self, pfns: Range<u64>) -> Result<(), NoBacking>;

    /// How many frames the store's reserve lacks. Zero (the default) for a
    /// store that backs descriptors without frames from the allocator.
    fn wants(&self) -> u64 {
        0
    }

    /// A frame for the reserve, taken from the free memory and reserved
    /// for the vmemmap ([`Reason::Vmemmap`]).
    fn give(&mut self, frame: PhysFrame) {
        unreachable!("a store that wants no frames was given {frame:?}")
    }

    /// Frames (PFNs) of the reserve the store can do without, for the
    /// allocator to free (after initialisation, which may have needed
    /// many). Each was reserved for the vmemmap ([`Reason::Vmemmap`]),
    /// by an exclusion or through [`give`](Self::give), and is no longer
    /// the store's.
    fn surplus(&mut self) -> Option<Range<u64>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bytes_past_the_reasons_are_invalid() {
        let mut desc = FrameDesc::new(DescState::Tail);
        for (i, &reason) in Reason::ALL.iter().enumerate() {
            desc.state = RESERVED + i as u8;
            assert_eq!(desc.state(), DescState::Reserved(reason));
        }
        for byte in [0, ALLOCATED + 1, RESERVED + Reason::COUNT as u8, u8::MAX] {
            desc.state = byte;
            assert_eq!(desc.state(), DescState::Invalid(byte));
        }
    }
}
