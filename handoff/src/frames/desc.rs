//! The per-frame descriptor and the store that holds them.

use core::fmt;
use core::ops::Range;

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
    /// A frame inside a free or allocated block that starts at a lower
    /// frame (or, during initialisation, free memory not yet in a block).
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
    /// The order of the largest naturally aligned block around this frame
    /// that is all RAM (capped at [`MAX_ORDER`](super::MAX_ORDER)): how far
    /// a block holding it may merge without reaching a hole.
    ram_order: u8,
    /// Room for what later services keep per frame (a reference count,
    /// slab state); zero for now.
    spare: [u8; 13],
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
        ram_order: 0,
        spare: [0; 13],
    };

    /// What a test store holds before initialisation: looks like the head of
    /// a free block of order 3 on a list, so that a descriptor the
    /// allocator forgets to write misleads it rather than passing unseen.
    #[cfg(test)]
    pub(super) const GARBAGE: FrameDesc = FrameDesc {
        next: 0,
        prev: 0,
        state: FREE,
        order: 3,
        ram_order: 18,
        spare: [0xa5; 13],
    };

    /// A descriptor for the allocator to fill in: unlinked, `state`, with
    /// the frame's `ram_order`.
    pub(super) const fn new(state: DescState, ram_order: u8) -> FrameDesc {
        let mut desc = FrameDesc {
            next: NIL,
            prev: NIL,
            state: 0,
            order: 0,
            ram_order,
            spare: [0; 13],
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

    /// The order of the largest naturally aligned all-RAM block around the
    /// frame, capped at [`MAX_ORDER`](super::MAX_ORDER).
    pub const fn ram_order(&self) -> u8 {
        self.ram_order
    }

    /// Changes the state, keeping the links and `ram_order`.
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
        d.field("state", &self.state())
            .field("ram_order", &self.ram_order);
        if matches!(self.state(), DescState::Free { .. }) {
            d.field("prev", &self.prev).field("next", &self.next);
        }
        d.finish()
    }
}

/// Where the descriptors live: the kernel's vmemmap, a `Vec` in tests.
///
/// Only RAM frames below the allocator's limit have descriptors (the
/// vmemmap is backed only there); the allocator never asks for any other
/// PFN. Each PFN must reach its own descriptor, the same every time: the
/// allocator's answers, and the kernel's trust in the frames it hands out,
/// rest on that.
pub trait Descriptors {
    /// The descriptor of frame `pfn` (physical address / 4096).
    fn desc(&self, pfn: u64) -> &FrameDesc;

    /// The descriptor of frame `pfn`, for writing.
    fn desc_mut(&mut self, pfn: u64) -> &mut FrameDesc;

    /// Writes `value` into the descriptors of `pfns`, which all exist.
    /// Initialisation writes every descriptor through this; a store over
    /// contiguous memory can make it one slice fill.
    fn fill(&mut self, pfns: Range<u64>, value: FrameDesc) {
        for pfn in pfns {
            *self.desc_mut(pfn) = value;
        }
    }
}
