//! The markdown table `make bench` prints and writes to `build/bench.md`.

use core::fmt::Write;

use handoff::paging::{LeafCount, PageSize};

use crate::maps::Machine;

/// One map's line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The map.
    pub label: String,
    /// The largest page size the plan allows.
    pub max_page: PageSize,
    /// Planned mappings (physmap segments and kernel sections).
    pub mappings: usize,
    /// RAM the physmap maps, in bytes.
    pub mapped: u64,
    /// RAM left out because the 4-level physmap cannot hold it, in bytes.
    pub unmapped: u64,
    /// Leaves, per size.
    pub leaves: LeafCount,
    /// The minimum number of page-table frames (`Plan::minimum_tables`).
    pub minimum: u64,
    /// Frames baton's builder took, once checked.
    pub baton_frames: Option<u64>,
    /// Frames the baseline took, once checked.
    pub baseline_frames: Option<u64>,
    /// Time of `Plan::make`, in nanoseconds.
    pub plan_ns: Option<f64>,
    /// Time of baton's build, in nanoseconds.
    pub baton_ns: Option<f64>,
    /// Time of the baseline's build, in nanoseconds.
    pub baseline_ns: Option<f64>,
}

impl Row {
    /// A row for `machine`, nothing measured yet.
    pub fn new(machine: &Machine) -> Row {
        let plan = &machine.plan;
        Row {
            label: machine.scenario.label.clone(),
            max_page: plan.max_page,
            mappings: plan.mappings().len(),
            mapped: plan.physmap_bytes,
            unmapped: plan.unmapped_ram,
            leaves: plan.leaves(),
            minimum: plan.minimum_tables().total(),
            baton_frames: None,
            baseline_frames: None,
            plan_ns: None,
            baton_ns: None,
            baseline_ns: None,
        }
    }

    /// How many times faster baton builds than the baseline.
    pub fn speedup(&self) -> Option<f64> {
        Some(self.baseline_ns? / self.baton_ns?)
    }

    /// The same, with the plan made first on both sides.
    pub fn speedup_with_plan(&self) -> Option<f64> {
        let plan = self.plan_ns?;
        Some((plan + self.baseline_ns?) / (plan + self.baton_ns?))
    }
}

/// `1.23 ms`: three significant digits in the unit that fits.
pub fn duration(ns: f64) -> String {
    let (value, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// `64 GiB`, `255.9 GiB`: bytes in the largest binary unit below them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut value = n as f64;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn page(size: PageSize) -> &'static str {
    match size {
        PageSize::Size4K => "4K",
        PageSize::Size2M => "2M",
        PageSize::Size1G => "1G",
    }
}

fn or_dash<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "–".to_owned(), show)
}

/// The table, with a heading line naming the machine and a legend.
pub fn markdown(rows: &[Row], machine: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Measured on {machine}.\n");
    out.push_str(
        "| map | pages up to | mappings | leaves 4K / 2M / 1G \
         | tables baton / x86_64 / minimum | plan | baton | x86_64 | x86_64 ÷ baton \
         | with plan |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for row in rows {
        let frames = |n: Option<u64>| match n {
            Some(n) if n == row.minimum => format!("{n}"),
            Some(n) => format!("**{n}**"),
            None => "–".to_owned(),
        };
        let label = if row.unmapped > 0 {
            format!(
                "{} ({} beyond the physmap left out)",
                row.label,
                bytes(row.unmapped)
            )
        } else {
            row.label.clone()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} / {} / {} | {} / {} / {} | {} | {} | {} | {} | {} |",
            label,
            page(row.max_page),
            row.mappings,
            row.leaves.size_4k,
            row.leaves.size_2m,
            row.leaves.size_1g,
            frames(row.baton_frames),
            frames(row.baseline_frames),
            row.minimum,
            or_dash(row.plan_ns, duration),
            or_dash(row.baton_ns, duration),
            or_dash(row.baseline_ns, duration),
            or_dash(row.speedup(), |x| format!("{x:.1}×")),
            or_dash(row.speedup_with_plan(), |x| format!("{x:.1}×")),
        );
    }
    out.push_str(
        "\nplan: `Plan::make` (memory map to mappings). baton: `Builder::map` for every \
         planned mapping. x86_64: the `x86_64` crate's (0.15) \
         `Mapper::map_to_with_table_flags` on an `OffsetPageTable`, page by page with the page \
         sizes `largest_pages` chooses and table flags PRESENT | WRITABLE, those baton gives every \
         table; `map_to` calls the same function but takes the table flags from each leaf, which \
         would leave the tables above read-only leaves read-only. Both build into the same host arena and are \
         verified leaf by leaf against the plan (`plan::verify`) before they are timed; each \
         timed run also checks its leaf and frame counts. Times are criterion's estimates \
         (slope, or mean in flat sampling) for one call. with plan: (plan + x86_64) ÷ \
         (plan + baton), the whole handoff on both sides. A table count in bold is above the \
         minimum.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_naturally() {
        assert_eq!(duration(512.0), "512 ns");
        assert_eq!(duration(1_234.0), "1.23 µs");
        assert_eq!(duration(45_600_000.0), "45.6 ms");
        assert_eq!(duration(2.5e9), "2.50 s");
        assert_eq!(bytes(64 << 30), "64 GiB");
        assert_eq!(bytes((1 << 40) - (1 << 30) * 103), "921 GiB");
        assert_eq!(bytes(3 << 39), "1.5 TiB");
    }

    #[test]
    fn a_row_with_extra_frames_is_marked() {
        let row = Row {
            label: "4 GiB".into(),
            max_page: PageSize::Size1G,
            mappings: 5,
            mapped: 4 << 30,
            unmapped: 0,
            leaves: LeafCount {
                size_4k: 1,
                size_2m: 2,
                size_1g: 3,
            },
            minimum: 7,
            baton_frames: Some(7),
            baseline_frames: Some(8),
            plan_ns: Some(1e3),
            baton_ns: Some(1e4),
            baseline_ns: Some(1e5),
        };
        let table = markdown(&[row], "a test machine");
        assert!(
            table.contains(
                "| 4 GiB | 1G | 5 | 1 / 2 / 3 | 7 / **8** / 7 | 1.00 µs | 10.0 µs | 100 µs | 10.0× | 9.2× |"
            ),
            "{table}"
        );
    }
}
