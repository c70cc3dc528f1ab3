//! Page tables: the plan, the builder and the walker.
//!
//! ```text
//!   Mapping { virt, phys, len, flags, max_page }
//!      │ largest_pages: which leaves (pure)      minimum_tables: how many
//!      ▼                                          tables they need (pure)
//!   Builder ── FrameSource (frames) + PhysWindow (writes) ──▶ tables
//!                                                               │
//!   Walker ── PhysWindow (reads) ◀──────────────────────────────┘
//!      ├─ leaves, translate, stats (per level, size, region)
//!      ├─ ptdump (Linux's format)
//!      └─ check_wx (Linux's W+X check)
//! ```
//!
//! Virtual addresses are `u64` (4- and 5-level, sign-extended); table
//! levels are numbered as the hardware does: 1 = page table (4 KiB leaves),
//! 2 = page directory (2 MiB), 3 = PDPT (1 GiB), 4 = PML4, 5 = PML5.

mod builder;
mod pages;
mod path;
mod protect;
mod ptdump;
mod unmap;
mod walker;
mod wx;

#[cfg(test)]
mod tests;

pub use builder::{BuildError, Builder};
pub use pages::{
    LEAF_FLAGS, LargestPages, LeafCount, Mapping, PAT_4K, PAT_LARGE, PHYS_LIMIT, PageSize,
    TableCount, largest_pages, leaf_count, minimum_tables, minimum_tables_sorted,
};
pub use path::{End, Path, Step};
pub use protect::{WxError, check_wx};
pub use ptdump::level_name;
pub use unmap::{UnmapError, Unmapped, Unmapper};
pub use walker::{LOWER_HALF_ENTRIES, Leaf, Leaves, Stats, Translation, Walker};
pub use wx::{WX_PASSED, WxRange, WxSummary};
