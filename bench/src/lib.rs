//! The host benchmark of baton's page-table builder (`make bench`).
//!
//! For each synthetic machine of [`maps`], baton's plan is built twice into
//! the same kind of fake physical memory ([`arena`]): by
//! `handoff::paging::Builder` and, as the baseline, by the `x86_64` crate's
//! `Mapper::map_to_with_table_flags` on an `OffsetPageTable` (`map_to` with
//! baton's table flags) one page at a time with the same page sizes
//! ([`build`]). Both are verified against the plan before they are timed.
//! The criterion harness lives in `benches/handoff.rs`; [`report`] turns
//! its estimates into the markdown table.

pub mod arena;
pub mod build;
pub mod maps;
pub mod report;
