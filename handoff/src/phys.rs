//! The seam to physical memory: the only place the kernel vouches for
//! addresses.
//!
//! The page-table builder and walker reach page-table frames only through
//! these two traits. In the kernel they are implemented over a direct map
//! (Limine's HHDM before the switch, baton's physmap after it); on the host
//! over simulated memory (see the `sim` feature), which checks every access.
#![allow(unsafe_code)] // Declaring the unsafe traits is the whole point.

use x86_64::structures::paging::{PageTable, PhysFrame};

/// Hands out 4 KiB frames for page tables.
///
/// # Safety
///
/// Every frame returned must be unused by anything else, reachable through
/// the [`PhysWindow`] it is used with, and never returned twice. Its content
/// may be anything: the builder clears it.
pub unsafe trait FrameSource {
    /// A fresh frame, or `None` when there is no memory left.
    fn allocate_frame(&mut self) -> Option<PhysFrame>;
}

/// Reaches page-table frames by physical address.
///
/// # Safety
///
/// `table` and `table_mut` must return the memory of exactly that physical
/// frame, and nothing else may access it while a returned reference lives.
pub unsafe trait PhysWindow {
    /// The page table held in `frame`.
    fn table(&self, frame: PhysFrame) -> &PageTable;
    /// The page table held in `frame`, for writing.
    fn table_mut(&mut self, frame: PhysFrame) -> &mut PageTable;
}
