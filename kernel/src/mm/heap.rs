//! The kernel heap: `linked_list_allocator` over a range of vmalloc space
//! that is mapped as the heap grows. `alloc` (Box, Vec, String) works once
//! `mm::init` has run; running out reports the request and stops.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};

use handoff::PAGE_SIZE;
use linked_list_allocator::Heap;
use log::error;

use super::vmalloc;

/// The least and the most virtual space the heap reserves to grow into.
const MIN_RESERVE: u64 = 1 << 30;
const MAX_RESERVE: u64 = 4 << 40;
/// The virtual space reserved ([`reserve_for`] the RAM present).
static RESERVED: AtomicU64 = AtomicU64::new(0);

/// The virtual space the heap reserves on a machine with `ram` bytes of
/// RAM: all of it and 1 GiB more, so that physical memory runs out before
/// the reservation does (within 1 GiB to 4 TiB).
pub fn reserve_for(ram: u64) -> u64 {
    ram.saturating_add(MIN_RESERVE)
        .next_multiple_of(MIN_RESERVE)
        .clamp(MIN_RESERVE, MAX_RESERVE)
}

/// The virtual space the heap has reserved (0 before [`init`]).
pub fn reserved() -> u64 {
    RESERVED.load(Ordering::Relaxed)
}
/// Mapped at start, and the smallest step it grows by.
const STEP: u64 = 256 * 1024;

struct State {
    heap: Heap,
    start: u64,
    mapped_end: u64,
    reserved_end: u64,
}

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

/// The heap, as Rust's global allocator.
pub struct KernelHeap;

#[global_allocator]
static HEAP: KernelHeap = KernelHeap;

/// Reserves the heap's virtual space for a machine with `ram` bytes of RAM
/// and maps its first part.
pub fn init(ram: u64) -> Result<(), vmalloc::VmError> {
    let reserve = reserve_for(ram);
    let area = vmalloc::VMALLOC
        .lock()
        .as_mut()
        .ok_or(vmalloc::VmError::NotReady)?
        .alloc(reserve, PAGE_SIZE)
        .map_err(vmalloc::VmError::Space)?;
    RESERVED.store(reserve, Ordering::Relaxed);
    vmalloc::populate(area.start, area.start + STEP)?;
    let mut heap = Heap::empty();
    // SAFETY: `[start, start + STEP)` was just mapped read-write for the
    // heap alone and stays mapped for the kernel's lifetime.
    unsafe { heap.init(area.start as *mut u8, STEP as usize) };
    *STATE.lock() = Some(State {
        heap,
        start: area.start,
        mapped_end: area.start + STEP,
        reserved_end: area.end(),
    });
    Ok(())
}

/// `(mapped, used)` bytes, for logs and tests.
pub fn usage() -> (u64, u64) {
    STATE
        .lock()
        .as_ref()
        .map_or((0, 0), |s| (s.mapped_end - s.start, s.heap.used() as u64))
}

impl State {
    /// Maps at least `bytes` more at the top and gives them to the heap.
    fn grow(&mut self, bytes: u64) -> Result<(), vmalloc::VmError> {
        let bytes = bytes.next_multiple_of(STEP);
        let end = self
            .mapped_end
            .checked_add(bytes)
            .filter(|&e| e <= self.reserved_end);
        let end = end.ok_or(vmalloc::VmError::ReservationFull {
            bytes: self.reserved_end - self.start,
        })?;
        vmalloc::populate(self.mapped_end, end)?;
        // SAFETY: the new pages follow the heap's top directly and were
        // just mapped read-write for it.
        unsafe { self.heap.extend(bytes as usize) };
        self.mapped_end = end;
        Ok(())
    }
}

// SAFETY: allocation is serialised by the lock; memory handed out comes
// from linked_list_allocator over mapped, heap-only pages.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut guard = STATE.lock();
        let Some(state) = guard.as_mut() else {
            error!(
                "heap: allocation of {} bytes before the heap exists",
                layout.size()
            );
            return ptr::null_mut();
        };
        if let Ok(p) = state.heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        let want = (layout.size() + layout.align()) as u64;
        if let Err(e) = state.grow(want) {
            let (mapped, used) = (state.mapped_end - state.start, state.heap.used());
            error!(
                "heap: out of memory: {} bytes (align {}) requested; growing failed: {e}",
                layout.size(),
                layout.align(),
            );
            error!(
                "heap:   {} KiB mapped, {} KiB used, {} MiB reserved",
                mapped >> 10,
                used >> 10,
                (state.reserved_end - state.start) >> 20
            );
            return ptr::null_mut();
        }
        state
            .heap
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let (Some(state), Some(p)) = (STATE.lock().as_mut(), NonNull::new(ptr)) {
            // SAFETY: `ptr` came from `alloc` with this layout (the
            // GlobalAlloc contract).
            unsafe { state.heap.deallocate(p, layout) };
        }
    }
}
