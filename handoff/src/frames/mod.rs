//! The physical frame allocator: a binary buddy allocator whose free
//! memory costs nothing until it is used.
//!
//! ```text
//!   MemoryMap ──init──▶ FrameAllocator ──alloc(order)──▶ PhysFrame (2^order frames)
//!   exclusions ─┘          │   ▲  └─release(kind): Limine's memory after the CR3
//!                          │   │    switch, boot services after the EFI handoff
//!                          ▼   │
//!       Descriptors: a FrameDesc per frame it reached, a GibRecord per GiB
//!       (the kernel's vmemmap, backed as they are written)
//! ```
//!
//! * [`FrameDesc`] (32 bytes, `repr(C)`): the state of a frame the
//!   allocator reached: head of a free or allocated block with its order,
//!   or reserved with a [`Reason`]; the free-list links as PFNs. Only
//!   reserved frames and the first frame of each block below a GiB have
//!   one; the rest of a free block is never written.
//! * [`GibRecord`] (16 bytes): whether an aligned GiB is a free block, and
//!   the next on that list.
//! * [`Descriptors`]: where descriptors and records live, backed on
//!   demand ([`Descriptors::back`]), with a reserve of frames the
//!   allocator keeps topped up for a store that needs them.
//! * [`FrameAllocator`]: initialised from the [`MemoryMap`]; only
//!   [`Allocatable::Now`] memory starts free, less the
//!   [`Exclusion`]s (what the kernel used before the allocator existed);
//!   later kinds join through [`FrameAllocator::release`]; memory that is
//!   never allocatable, and everything that is not RAM, is never handed
//!   out.
//! * [`vmemmap`]: where the kernel puts descriptors and records, and what
//!   it needs before the allocator exists.
//!
//! [`MemoryMap`]: crate::memmap::MemoryMap
//! [`Allocatable::Now`]: crate::memmap::Allocatable::Now

mod buddy;
mod desc;
pub mod vmemmap;

#[cfg(test)]
mod tests;

pub use buddy::{
    AllocError, Exclusion, FrameAllocator, FrameState, FrameStats, MAX_ORDER, ORDERS, SetupError,
};
pub use desc::{
    DESC_SIZE, DescState, Descriptors, FrameDesc, GIB_RECORD_SIZE, GibRecord, NoBacking, Reason,
};
