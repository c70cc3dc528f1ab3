//! The physical frame allocator: a binary buddy allocator whose state lives
//! in one descriptor per 4 KiB frame of RAM.
//!
//! ```text
//!   MemoryMap ──init──▶ FrameAllocator ──alloc(order)──▶ PhysFrame (2^order frames)
//!   exclusions ─┘          │   ▲  └─release(kind): Limine's memory after the CR3
//!                          │   │    switch, boot services after the EFI handoff
//!                          ▼   │
//!       Descriptors: FrameDesc per RAM frame (the kernel's sparse vmemmap)
//! ```
//!
//! * [`FrameDesc`] (32 bytes, `repr(C)`): the frame's state — head of a
//!   free or allocated block with its order, a tail inside one, or
//!   reserved with a [`Reason`] — the free-list links as PFNs, and the
//!   order of the largest all-RAM aligned block around the frame, which
//!   bounds merging so that the allocator never reads a descriptor of a
//!   hole.
//! * [`Descriptors`]: where the descriptors live. Only RAM frames have one.
//! * [`FrameAllocator`]: initialised from the [`MemoryMap`]; only
//!   [`Allocatable::Now`] memory starts free, less the
//!   [`Exclusion`]s (what the kernel used before the allocator existed);
//!   later kinds join through [`FrameAllocator::release`]; memory that is
//!   never allocatable, and everything that is not RAM, is never handed
//!   out.
//! * [`vmemmap`]: where the kernel puts the descriptors and how it backs
//!   them before the allocator exists.
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
