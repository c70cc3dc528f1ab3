//! A strict fake of physical memory, for host tests and benchmarks (feature
//! `sim`).
//!
//! Like Redox's `rmm` emulator it is there to catch mistakes, not only to
//! store bytes:
//!
//! - frames come from one configurable physical range, in ascending order,
//!   optionally no more than a limit (to provoke running out);
//! - a fresh frame holds garbage (entries that look present and point
//!   outside the fake), so tables that are not cleared show up;
//! - touching a frame that was never handed out panics, and so does reading
//!   one that was handed out but never written.
//!
//! Storage is blocks of tables indexed by frame number, so an access costs a
//! subtraction and a bounds check, and [`Sim::reset`] reuses the memory:
//! fast enough for benchmarks that map tens of TiB.
//!
//! A builder borrows both halves of one [`Sim`]:
//! `Builder::new(&mut sim.window, &mut sim.frames, levels)`; a walker then
//! reads `&sim.window`.

use std::boxed::Box;
use std::cell::Cell;
use std::rc::Rc;
use std::vec::Vec;

use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTable, PageTableFlags, PhysFrame};

use crate::PAGE_SIZE;
use crate::phys::{FrameSource, PhysWindow};

/// What a fresh frame holds in every entry: present, writable, user,
/// accessed, dirty, large, pointing far outside any fake.
pub const GARBAGE: u64 = 0x000d_ead0_0bad_f0e7;

/// What the window and the frame source share.
#[derive(Debug)]
struct Shared {
    /// The frame number of the first frame in the range.
    first: u64,
    /// The frames in the range.
    capacity: u64,
    /// The frames handed out so far (always the first ones of the range).
    handed_out: Cell<u64>,
}

/// Simulated physical memory: a [`SimWindow`] and a [`SimFrames`] over one
/// range, separate fields so that a builder can borrow both.
#[derive(Debug)]
pub struct Sim {
    /// Reaches the frames handed out.
    pub window: SimWindow,
    /// Hands frames out.
    pub frames: SimFrames,
}

impl Sim {
    /// Memory from `start` to `end` (exclusive), all of it free.
    ///
    /// # Panics
    ///
    /// If the bounds are not 4 KiB-aligned or `end` is below `start`.
    pub fn new(start: PhysAddr, end: PhysAddr) -> Sim {
        assert!(
            start.is_aligned(PAGE_SIZE) && end.is_aligned(PAGE_SIZE) && start <= end,
            "sim: bad range {start:?}..{end:?}"
        );
        let shared = Rc::new(Shared {
            first: start.as_u64() / PAGE_SIZE,
            capacity: (end - start) / PAGE_SIZE,
            handed_out: Cell::new(0),
        });
        Sim {
            window: SimWindow::new(shared.clone()),
            frames: SimFrames {
                shared,
                limit: u64::MAX,
            },
        }
    }

    /// The same, but handing out no more than `frames` frames.
    pub fn with_limit(mut self, frames: u64) -> Sim {
        self.frames.limit = frames;
        self
    }

    /// Takes every frame back: all are free again, and garbage once handed
    /// out. Keeps the host memory, so that benchmark iterations do not pay
    /// for allocating it again.
    pub fn reset(&mut self) {
        self.frames.shared.handed_out.set(0);
        self.window.written.fill(false);
    }
}

/// The frame source of a [`Sim`].
#[derive(Debug)]
pub struct SimFrames {
    shared: Rc<Shared>,
    limit: u64,
}

impl SimFrames {
    /// The frames handed out so far.
    pub fn allocated(&self) -> u64 {
        self.shared.handed_out.get()
    }

    /// The frames still to hand out.
    pub fn remaining(&self) -> u64 {
        self.shared.capacity.min(self.limit) - self.allocated()
    }
}

#[expect(
    unsafe_code,
    reason = "implementing the phys seam is the point of the fake"
)]
// SAFETY: frames are handed out in order from the range and never twice,
// and the `SimWindow` of the same `Sim` reaches each of them.
unsafe impl FrameSource for SimFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        if self.remaining() == 0 {
            return None;
        }
        let n = self.allocated();
        self.shared.handed_out.set(n + 1);
        Some(PhysFrame::containing_address(PhysAddr::new(
            (self.shared.first + n) * PAGE_SIZE,
        )))
    }
}

/// Tables per block of host memory: 2 MiB per allocation.
const CHUNK: usize = 512;

/// The physical-memory window of a [`Sim`].
#[derive(Debug)]
pub struct SimWindow {
    shared: Rc<Shared>,
    /// The tables, by frame number from the start of the range, in blocks
    /// of [`CHUNK`]; kept across [`Sim::reset`].
    chunks: Vec<Box<[PageTable]>>,
    /// Per frame: whether it has been written since it was handed out.
    written: Vec<bool>,
    /// What a fresh frame holds.
    garbage: Box<PageTable>,
}

impl SimWindow {
    fn new(shared: Rc<Shared>) -> SimWindow {
        let mut garbage = Box::new(PageTable::new());
        for entry in garbage.iter_mut() {
            entry.set_addr(
                PhysAddr::new(GARBAGE & 0x000f_ffff_ffff_f000),
                PageTableFlags::from_bits_retain(GARBAGE & 0xfff),
            );
        }
        SimWindow {
            shared,
            chunks: Vec::new(),
            written: Vec::new(),
            garbage,
        }
    }

    /// The frames handed out so far.
    pub fn allocated(&self) -> u64 {
        self.shared.handed_out.get()
    }

    /// Where `frame` lives; panics unless it was handed out.
    fn slot(&self, frame: PhysFrame) -> usize {
        let number = frame.start_address().as_u64() / PAGE_SIZE;
        match number.checked_sub(self.shared.first) {
            Some(slot) if slot < self.shared.handed_out.get() => slot as usize,
            _ => panic!(
                "sim: access to frame {:#x}, which was never allocated",
                frame.start_address().as_u64()
            ),
        }
    }
}

#[expect(
    unsafe_code,
    reason = "implementing the phys seam is the point of the fake"
)]
// SAFETY: each handed-out frame has its own table in `chunks`, returned only
// for that frame, and the borrow of `self` keeps it exclusive.
unsafe impl PhysWindow for SimWindow {
    fn table(&self, frame: PhysFrame) -> &PageTable {
        let slot = self.slot(frame);
        if !self.written.get(slot).copied().unwrap_or(false) {
            panic!(
                "sim: read of frame {:#x} before any write: it holds garbage",
                frame.start_address().as_u64()
            );
        }
        &self.chunks[slot / CHUNK][slot % CHUNK]
    }

    fn table_mut(&mut self, frame: PhysFrame) -> &mut PageTable {
        let slot = self.slot(frame);
        while self.chunks.len() * CHUNK <= slot {
            self.chunks
                .push((0..CHUNK).map(|_| PageTable::new()).collect());
            self.written.resize(self.chunks.len() * CHUNK, false);
        }
        let table = &mut self.chunks[slot / CHUNK][slot % CHUNK];
        if !self.written[slot] {
            self.written[slot] = true;
            table.clone_from(&self.garbage);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(frames: u64) -> Sim {
        Sim::new(
            PhysAddr::new(0x10_0000),
            PhysAddr::new(0x10_0000 + frames * PAGE_SIZE),
        )
    }

    #[test]
    fn hands_out_the_range_in_order_then_runs_out() {
        let mut sim = sim(3);
        let got: Vec<u64> = core::iter::from_fn(|| sim.frames.allocate_frame())
            .map(|frame| frame.start_address().as_u64())
            .collect();
        assert_eq!(got, vec![0x10_0000, 0x10_1000, 0x10_2000]);
        assert_eq!(sim.frames.allocated(), 3);
        assert_eq!(sim.window.allocated(), 3);
        assert_eq!(sim.frames.remaining(), 0);
    }

    #[test]
    fn a_limit_runs_out_first() {
        let mut sim = sim(10).with_limit(2);
        assert!(sim.frames.allocate_frame().is_some());
        assert!(sim.frames.allocate_frame().is_some());
        assert_eq!(sim.frames.allocate_frame(), None);
    }

    #[test]
    fn reset_frees_every_frame_and_poisons_it_again() {
        let mut sim = sim(2);
        let frame = sim.frames.allocate_frame().unwrap();
        sim.window.table_mut(frame).zero();
        let _ = sim.frames.allocate_frame().unwrap();
        assert_eq!(sim.frames.allocate_frame(), None);
        sim.reset();
        assert_eq!(sim.frames.remaining(), 2);
        assert_eq!(sim.frames.allocate_frame(), Some(frame));
        let table = sim.window.table_mut(frame);
        assert_eq!(table[0].addr().as_u64() | table[0].flags().bits(), GARBAGE);
    }

    #[test]
    #[should_panic(expected = "never allocated")]
    fn frames_taken_back_by_reset_are_out_of_reach() {
        let mut sim = sim(2);
        let frame = sim.frames.allocate_frame().unwrap();
        sim.window.table_mut(frame).zero();
        sim.reset();
        let _ = sim.window.table(frame);
    }

    #[test]
    #[should_panic(expected = "before any write")]
    fn a_frame_handed_out_again_must_be_written_first() {
        let mut sim = sim(2);
        let frame = sim.frames.allocate_frame().unwrap();
        sim.window.table_mut(frame).zero();
        sim.reset();
        let _ = sim.frames.allocate_frame();
        let _ = sim.window.table(frame);
    }

    #[test]
    fn fresh_frames_hold_garbage_and_keep_writes() {
        let mut sim = sim(2);
        let frame = sim.frames.allocate_frame().unwrap();
        let table = sim.window.table_mut(frame);
        assert!(
            table
                .iter()
                .all(|entry| entry.addr().as_u64() | entry.flags().bits() == GARBAGE)
        );
        table.zero();
        table[7].set_addr(PhysAddr::new(0x5000), PageTableFlags::PRESENT);
        assert_eq!(sim.window.table(frame)[7].addr(), PhysAddr::new(0x5000));
        assert!(sim.window.table(frame)[8].is_unused());
    }

    #[test]
    #[should_panic(expected = "never allocated")]
    fn access_beyond_what_was_handed_out_panics() {
        let mut sim = sim(4);
        let _ = sim.frames.allocate_frame();
        let second = PhysFrame::containing_address(PhysAddr::new(0x10_1000));
        let _ = sim.window.table_mut(second);
    }

    #[test]
    #[should_panic(expected = "never allocated")]
    fn access_below_the_range_panics() {
        let sim = sim(4);
        let _ = sim
            .window
            .table(PhysFrame::containing_address(PhysAddr::new(0x1000)));
    }

    #[test]
    #[should_panic(expected = "before any write")]
    fn reading_an_unwritten_frame_panics() {
        let mut sim = sim(4);
        let frame = sim.frames.allocate_frame().unwrap();
        let _ = sim.window.table(frame);
    }
}
