//! `make bench`: baton's page-table builder against the `x86_64` crate's
//! per-page `map_to_with_table_flags`, on every synthetic machine, under criterion.
//!
//! Per machine (one criterion group each) three functions are timed:
//! `plan` (`Plan::make`), `baton` (the builder) and `x86_64` (the
//! baseline). Before the first timing, each build is verified against the
//! plan, leaf by leaf; every timed build checks its counts. At the end the
//! estimates are read back from criterion's output and written as a
//! markdown table to `build/bench.md` (or `$BENCH_OUT`) and to stdout. A
//! run that did not time every function of every machine (a filter) writes
//! `bench-filtered.md` beside it instead, so that the full table survives.
//!
//! Arguments are criterion's: `cargo bench -p handoff-bench -- 64TiB`
//! runs only the groups whose id contains `64TiB`; `-- --test` runs each
//! function once (verification included) without timing.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use std::{env, fs, process};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use handoff::plan::Plan;
use handoff_bench::arena::Arena;
use handoff_bench::build::{self, Built};
use handoff_bench::maps::{Machine, scenarios};
use handoff_bench::report::{self, Row};

/// Frames the arena holds beyond the plan's minimum, so that a builder
/// that needs more still finishes (and the table shows it).
const SPARE_FRAMES: u64 = 4096;

/// Rough costs per leaf, only to size each measurement: the largest maps
/// take about a second per baseline build, so those get the fewest samples
/// criterion allows, one build each.
const PLAN_NS_PER_LEAF: u64 = 2;
const BATON_NS_PER_LEAF: u64 = 1;
const BASELINE_NS_PER_LEAF: u64 = 30;

/// Sets sampling for the next function of `group`, expected to take about
/// `estimate` per call: linear sampling (20 samples, 210 calls at least)
/// where that fits in a second, else flat sampling with 10 samples.
fn tune(group: &mut BenchmarkGroup<'_, WallTime>, estimate: Duration) {
    let second = Duration::from_secs(1);
    if estimate * 210 <= second {
        group
            .sampling_mode(SamplingMode::Auto)
            .sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(second);
    } else {
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(estimate.clamp(Duration::from_millis(1), Duration::from_millis(300)))
            .measurement_time(second.max(estimate * 12));
    }
}

/// Times `build` over `iters` builds, checking each one's counts.
fn time_builds<E: std::fmt::Debug>(
    iters: u64,
    expected: (handoff::paging::LeafCount, u64),
    mut build: impl FnMut() -> Result<Built, E>,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let built = build();
        total += start.elapsed();
        let built = built.expect("the build succeeds");
        assert_eq!(
            (built.leaves, built.frames),
            expected,
            "a timed build differs from the verified one"
        );
    }
    total
}

/// Criterion's estimate for `group/function` if this run wrote it: the
/// slope in linear sampling, else the mean, in nanoseconds.
fn estimate(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let fresh = fs::metadata(&path).ok()?.modified().ok()? >= since;
    if !fresh {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
    let typical = match &json["slope"] {
        serde_json::Value::Null => &json["mean"],
        slope => slope,
    };
    typical["point_estimate"].as_f64()
}

/// `AMD EPYC, 2 cores, rustc 1.95.0 (…)`.
fn this_machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = process::Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or("rustc (unknown version)".to_owned(), |v| {
            v.trim().to_owned()
        });
    format!("{model}, {cores} cores, {rustc}, x86_64 0.15")
}

/// Where a partial run writes its table: `bench.md` -> `bench-filtered.md`.
fn filtered(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or("bench".into(), |s| s.to_string_lossy());
    out.with_file_name(format!("{stem}-filtered.md"))
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace");
    let out = env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("build/bench.md"));
    let criterion_dir = out.with_file_name("criterion");
    let started = SystemTime::now();
    let mut criterion = Criterion::default()
        .output_directory(&criterion_dir)
        .configure_from_args();

    let mut arena = Arena::new(1);
    let mut rows = Vec::new();
    let scenarios = scenarios();
    let machines = scenarios.len();
    for scenario in scenarios {
        let machine = Machine::new(&scenario);
        let inputs = machine.inputs();
        let plan = &machine.plan;
        let mappings = plan.mappings();
        let expected_leaves = plan.leaves();
        let minimum = plan.minimum_tables().total();
        if arena.capacity() < minimum + SPARE_FRAMES {
            // Free the old arena first: the largest is 256 MiB.
            drop(std::mem::replace(&mut arena, Arena::new(1)));
            arena = Arena::new((minimum + SPARE_FRAMES) as usize);
        }
        let mut row = Row::new(&machine);
        let mut group = criterion.benchmark_group(&scenario.id);
        let per_leaf = |ns| Duration::from_nanos(ns * expected_leaves.total());

        let mut scratch = Box::new(Plan::new());
        tune(&mut group, per_leaf(PLAN_NS_PER_LEAF));
        group.bench_function("plan", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    scratch.make(black_box(&inputs)).expect("the plan is made");
                }
                start.elapsed()
            });
        });

        let mut baton_counts = None;
        tune(&mut group, per_leaf(BATON_NS_PER_LEAF));
        group.bench_function("baton", |b| {
            let expected = *baton_counts.get_or_insert_with(|| {
                let built = build::baton(&mut arena, mappings).expect("baton builds the plan");
                build::check(&arena.window, &built, plan, &inputs)
                    .unwrap_or_else(|e| panic!("{}: baton's tables are wrong: {e}", scenario.id));
                row.baton_frames = Some(built.frames);
                (built.leaves, built.frames)
            });
            b.iter_custom(|iters| {
                time_builds(iters, expected, || {
                    build::baton(black_box(&mut arena), black_box(mappings))
                })
            });
        });

        let mut baseline_counts = None;
        tune(&mut group, per_leaf(BASELINE_NS_PER_LEAF));
        group.bench_function("x86_64", |b| {
            let expected = *baseline_counts.get_or_insert_with(|| {
                let built =
                    build::baseline(&mut arena, mappings).expect("the baseline maps the plan");
                build::check(&arena.window, &built, plan, &inputs).unwrap_or_else(|e| {
                    panic!("{}: the baseline's tables are wrong: {e}", scenario.id)
                });
                row.baseline_frames = Some(built.frames);
                (built.leaves, built.frames)
            });
            b.iter_custom(|iters| {
                time_builds(iters, expected, || {
                    build::baseline(black_box(&mut arena), black_box(mappings))
                })
            });
        });
        group.finish();

        row.plan_ns = estimate(&criterion_dir, &scenario.id, "plan", started);
        row.baton_ns = estimate(&criterion_dir, &scenario.id, "baton", started);
        row.baseline_ns = estimate(&criterion_dir, &scenario.id, "x86_64", started);
        let ran = row.baton_frames.is_some() || row.baseline_frames.is_some();
        if ran || row.plan_ns.is_some() {
            rows.push(row);
        }
    }
    criterion.final_summary();

    let timed = rows
        .iter()
        .any(|r| r.plan_ns.is_some() || r.baton_ns.is_some() || r.baseline_ns.is_some());
    if !timed {
        // `--test`, or a filter that matched nothing: keep the last table.
        println!("{} maps built and verified; nothing timed", rows.len());
        return;
    }
    let table = report::markdown(&rows, &this_machine());
    println!("\n{table}");
    let complete = rows.len() == machines
        && rows
            .iter()
            .all(|r| r.plan_ns.is_some() && r.baton_ns.is_some() && r.baseline_ns.is_some());
    let out = if complete { out } else { filtered(&out) };
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).expect("the output directory can be made");
    }
    fs::write(&out, &table).expect("the table can be written");
    println!("Written to {}", out.display());
}
