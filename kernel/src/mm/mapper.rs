//! The one way the kernel's page tables change after boot: mapping
//! through the builder (refusing W+X), unmapping through the unmapper with
//! the TLB invalidated here and on every other CPU.

use core::fmt;

use handoff::paging::{BuildError, Leaf, Mapping, UnmapError, Unmapped, WxError};
use x86_64::structures::paging::PhysFrame;

use super::frames::{FRAMES, TableFrames};
use crate::cpu::tlb;
use crate::kspace;

/// Why a mapping change failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapperError {
    /// The mapping would be writable and executable.
    Wx(WxError),
    /// The builder refused it (overlap, out of frames, ...).
    Build(BuildError),
    /// The unmapper refused it.
    Unmap(UnmapError),
}

impl fmt::Display for MapperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapperError::Wx(e) => write!(f, "{e:?}"),
            MapperError::Build(e) => write!(f, "{e}"),
            MapperError::Unmap(e) => write!(f, "{e:?}"),
        }
    }
}

/// Maps `mapping` into the kernel's live tables, new page tables from the
/// frame allocator. Nothing writable may be executable.
pub fn map(mapping: &Mapping) -> Result<(), MapperError> {
    let kernel = kspace::get();
    mapping.check_wx(kernel.cpu().nx).map_err(MapperError::Wx)?;
    kernel
        .map(&mut TableFrames, [mapping])
        .map_err(MapperError::Build)
}

/// Unmaps `[virt, virt + len)`: `on_leaf` sees each leaf before its TLB
/// entry is invalidated here; then every other CPU invalidates the range;
/// only then do emptied page tables go back to the frame allocator (a CPU
/// might still hold them in its paging-structure caches before).
pub fn unmap(virt: u64, len: u64, mut on_leaf: impl FnMut(&Leaf)) -> Result<Unmapped, MapperError> {
    let mut freed = [None; 64];
    let mut n = 0;
    let done = kspace::get()
        .unmap(
            virt,
            len,
            |leaf| {
                on_leaf(leaf);
                tlb::invlpg(leaf.virt);
            },
            |frame, _level| {
                if n == freed.len() {
                    // Too many to hold: make every CPU forget the range
                    // now, then give the tables back.
                    shootdown(virt, len);
                    for f in freed.iter_mut().filter_map(Option::take) {
                        free_table(f);
                    }
                    n = 0;
                }
                freed[n] = Some(frame);
                n += 1;
            },
        )
        .map_err(MapperError::Unmap)?;
    shootdown(virt, len);
    for frame in freed.iter_mut().filter_map(Option::take) {
        free_table(frame);
    }
    Ok(done)
}

/// Makes every other CPU forget the range, or stops the machine: going on
/// would free memory another CPU may still reach.
fn shootdown(virt: u64, len: u64) {
    if let Err(e) = tlb::shootdown(virt, len) {
        log::error!(
            "smp: TLB shootdown of {virt:#x}+{len:#x}: {} CPUs did not answer; stopping",
            e.cpus
        );
        crate::exit::fatal();
    }
}

/// Gives an emptied page table back; a refusal is a bookkeeping bug,
/// logged.
fn free_table(frame: PhysFrame) {
    if let Err(e) = FRAMES.lock().free(frame, 0) {
        log::error!(
            "mapper: freeing page-table frame {:#x}: {e:?}",
            frame.start_address().as_u64()
        );
    }
}
