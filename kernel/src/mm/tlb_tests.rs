//! Self-test of the global TLB flush (`cpu::tlb::flush_all`) the CR3
//! switch and large shootdowns rely on: a global entry left stale on
//! purpose is dropped by it.
//!
//! The flush is tested on the stale entry itself, before anything else
//! touches the TLB, so that an empty or CR3-only flush fails even where a
//! CR3 write drops global entries too (QEMU's TCG). A CR3 write keeps
//! them on real CPUs, which is why the switch flushes them; the test then
//! leaves the entry stale once more and says which of the two this CPU did
//! on a CR3 reload alone.

use handoff::paging::{LEAF_FLAGS, Mapping, PageSize};
use log::debug;
use x86_64::PhysAddr;
use x86_64::registers::control::Cr3;

use super::{mapper, vmalloc};
use crate::cpu::{tlb, trap};
use crate::kspace;
use crate::selftest::{NotPassed, Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[Test {
    name: "cpu: the global flush drops a stale global TLB entry",
    run: stale_global_entry,
}];

const PAGE: u64 = 4096;
const OLD: u64 = 0x01d0_01d0_01d0_01d0;
const NEW: u64 = 0x0e10_0e10_0e10_0e10;

/// What the repointed page read.
struct Reads {
    /// Still the old frame's word, before any flush.
    stale: bool,
    /// After the global flush.
    after_flush: u64,
    /// Stale again (the other way round), then after a CR3 reload alone;
    /// `None` if the entry did not stay stale the second time.
    after_cr3: Option<u64>,
}

/// Points a global page at another frame without invalidating it, then
/// reads it after [`tlb::flush_all`], which must show the new frame; then
/// reports what a CR3 reload alone does to such an entry.
fn stale_global_entry() -> TestResult {
    let kernel = kspace::get();
    if !kernel.cpu().global {
        crate::skip!("no global pages on this CPU");
    }
    let area = vmalloc::vmalloc(3 * PAGE).map_err(|e| fail!("vmalloc: {e}"))?;
    // Two pages under one page table: repointing one frees no table.
    let first = if (area.start + PAGE).is_multiple_of(512 * PAGE) {
        area.start + PAGE
    } else {
        area.start
    };
    let (page, spare) = (first, first + PAGE);
    let frames = frame_of(page).zip(frame_of(spare));
    let reads = frames
        .ok_or_else(|| fail!("vmalloc's pages are not mapped"))
        .and_then(|(old, new)| repoint_and_read(page, spare, old, new));
    // Whatever happened, the page goes back to its own frame, flushed.
    let restored = frames
        .map_or(Ok(()), |(old, _)| repoint(page, old, true))
        .and_then(|()| vmalloc::vfree(area.start).map_err(|e| fail!("vfree: {e}")));
    let reads = reads?;
    restored?;
    if !reads.stale {
        crate::skip!("the TLB dropped the entry by itself: nothing stale to flush");
    }
    match reads.after_cr3 {
        Some(NEW) => debug!("cpu: a CR3 reload kept the stale global entry"),
        Some(_) => debug!(
            "cpu: a CR3 reload dropped the stale global entry (QEMU's TCG drops its whole TLB \
             on CR3 writes)"
        ),
        None => debug!("cpu: the entry did not stay stale a second time: CR3 reload not judged"),
    }
    check!(
        reads.after_flush == NEW,
        "after the global flush the page still reads {:#x}",
        reads.after_flush
    );
    Ok(())
}

/// Caches `page`'s entry, then points it at `new` (`spare`'s frame)
/// without an INVLPG and reads it: at once and after the global flush.
/// Then points it back at `old` the same way and reads it after a CR3
/// reload.
fn repoint_and_read(
    page: u64,
    spare: u64,
    old: PhysAddr,
    new: PhysAddr,
) -> Result<Reads, NotPassed> {
    trap::probe_write(page, OLD).map_err(|f| fail!("write: {f:?}"))?;
    trap::probe_write(spare, NEW).map_err(|f| fail!("write: {f:?}"))?;
    check!(read(page) == OLD, "the page does not read back");
    repoint(page, new, false)?;
    let stale = read(page) == OLD;
    tlb::flush_all();
    let after_flush = read(page);
    repoint(page, old, false)?;
    let stale_again = read(page) == NEW;
    let (root, flags) = Cr3::read();
    // SAFETY: the same root and flags: only the TLB's non-global entries
    // go.
    unsafe { Cr3::write(root, flags) };
    Ok(Reads {
        stale,
        after_flush,
        after_cr3: stale_again.then(|| read(page)),
    })
}

/// Maps `page` to `frame` with its own flags (global among them); with
/// `flush`, invalidates it everywhere, else leaves the TLB as it is.
fn repoint(page: u64, frame: PhysAddr, flush: bool) -> TestResult {
    let kernel = kspace::get();
    let leaf = kernel
        .translate(page)
        .ok_or_else(|| fail!("{page:#x} is not mapped"))?
        .leaf;
    check!(
        leaf.flags
            .contains(x86_64::structures::paging::PageTableFlags::GLOBAL),
        "vmalloc's page {page:#x} is not global"
    );
    // The page's table keeps the other page: nothing is freed.
    kernel
        .unmap(page, PAGE, |_| {}, |_, _| {})
        .map_err(|e| fail!("unmap: {e:?}"))?;
    mapper::map(&Mapping {
        virt: page,
        phys: frame,
        len: PAGE,
        flags: leaf.flags & LEAF_FLAGS,
        max_page: PageSize::Size4K,
    })
    .map_err(|e| fail!("map: {e}"))?;
    if flush {
        tlb::flush_all();
    }
    Ok(())
}

fn frame_of(va: u64) -> Option<PhysAddr> {
    kspace::get().translate(va).map(|t| t.phys)
}

fn read(va: u64) -> u64 {
    trap::probe_read(va).unwrap_or(u64::MAX)
}
