//! `make bench-boot`: how baton's boot time and QEMU's memory grow with the
//! guest's RAM.
//!
//! `bench-boot [--kernel PATH] [--runs N] [--sizes 1G,64G,1T]
//! [--test-sizes 1G,16G] [--out FILE]` boots the same kernel on guests of
//! each size (q35, `-cpu max,phys-bits=48`: 1 GiB pages, room for a
//! terabyte), their RAM a sparse file QEMU creates and unlinks in
//! `$BENCH_MEM_DIR` (default `$BUILD_DIR/bench-boot`), so the host needs
//! only what the guest touches. Each boot runs until baton logs "boot
//! complete; idling" (or, for `--test-sizes`, until the self-tests end);
//! times come from the log's timestamps, QEMU's peak resident memory from
//! `/proc/<pid>/status` (VmHWM).
//!
//! The timestamps are baton's TSC divided by the frequency baton measured
//! against the PIT, which a loaded TCG host can throw off (15 GHz has been
//! seen for a 2.6 GHz TSC). Under TCG the guest's TSC is the host's, so
//! each boot's times are taken back to TSC cycles with the frequency its
//! log states and divided by the host's TSC frequency (`cpu MHz` in
//! `/proc/cpuinfo`, where the host's TSC is constant). Each size boots `--runs` times
//! (default 3), one boot at a time; the table shows medians, and the
//! ratios to the first size. Under TCG absolute times mean little; the
//! ratios are the result.

// The runner's log reading; bench-boot needs only part of it.
#[allow(dead_code)]
mod check;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

const TIMEOUT: Duration = Duration::from_secs(600);

struct Config {
    root: PathBuf,
    build: PathBuf,
    kernel: PathBuf,
    runs: usize,
    sizes: Vec<String>,
    test_sizes: Vec<String>,
    out: PathBuf,
    mem_dir: PathBuf,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench-boot [--kernel PATH] [--runs N] [--sizes 1G,64G,1T] \
         [--test-sizes 1G,16G] [--out FILE]"
    );
    std::process::exit(2);
}

fn list(arg: Option<String>) -> Vec<String> {
    let arg = arg.unwrap_or_else(|| usage());
    arg.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn config() -> Config {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let build = root.join(env::var("BUILD_DIR").unwrap_or_else(|_| "build".into()));
    let mut cfg = Config {
        kernel: build.join("baton"),
        runs: 3,
        sizes: list(Some("1G,64G,1T".into())),
        test_sizes: list(Some("1G,16G".into())),
        out: build.join("bench-boot.md"),
        mem_dir: env::var_os("BENCH_MEM_DIR")
            .filter(|v| !v.is_empty())
            .map_or_else(|| build.join("bench-boot"), PathBuf::from),
        build,
        root,
    };
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kernel" => cfg.kernel = cfg.root.join(args.next().unwrap_or_else(|| usage())),
            "--runs" => {
                cfg.runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage())
            }
            "--sizes" => cfg.sizes = list(args.next()),
            "--test-sizes" => cfg.test_sizes = list(args.next()),
            "--out" => cfg.out = cfg.root.join(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    cfg
}

/// What one boot measured, in microseconds of baton's clock and KiB.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// From "baton ... booting" to the end line.
    total: u64,
    /// `handoff: phases:`, in order, and its total.
    phases: Vec<(String, u64)>,
    handoff: u64,
    /// From the phases line to the end line: memory services, SMP, the
    /// rest of the boot (or the self-tests).
    after: u64,
    rss_kib: u64,
}

/// The timestamp of a log line, `[   12.345678] ...`, in microseconds.
fn stamp(line: &str) -> Option<u64> {
    let inner = line.trim_start().strip_prefix('[')?.split(']').next()?;
    let (s, us) = inner.trim().split_once('.')?;
    Some(s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?)
}

/// `parse 123 us, plan 45 us, ..., total 678 us` after `handoff: phases: `.
fn phases(line: &str) -> Option<(Vec<(String, u64)>, u64)> {
    let list = line.split("handoff: phases: ").nth(1)?;
    let mut out = Vec::new();
    let mut total = None;
    for item in list.split(", ") {
        let mut words = item.split_whitespace();
        let (name, us) = (words.next()?, words.next()?.parse().ok()?);
        if name == "total" {
            total = Some(us);
        } else {
            out.push((name.to_owned(), us));
        }
    }
    Some((out, total?))
}

/// The TSC frequency baton measured, from `... TSC 2609.118 MHz ...`.
fn logged_mhz(lines: &[String]) -> Option<f64> {
    let (_, line) = check::find(lines, "cpu: own stack, * TSC * MHz")?;
    line.split("TSC ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The host's TSC frequency, if the host says its TSC is constant.
fn host_mhz() -> Option<f64> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    let constant = info
        .lines()
        .any(|l| l.starts_with("flags") && l.contains(" constant_tsc"));
    let line = info.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz = line.split(':').nth(1)?.trim().parse().ok()?;
    constant.then_some(mhz)
}

/// Reads a boot's log: the sample, if it got from `start` to `end`, its
/// times scaled by `scale` (the host's TSC frequency over the one the log
/// used; 1 to take the log as it is).
fn read_log(lines: &[String], start: &str, end: &str, scale: f64) -> Option<Sample> {
    let (_, first) = check::find(lines, start)?;
    let (_, last) = check::find(lines, end)?;
    let (_, phase_line) = check::find(lines, "handoff: phases: ")?;
    let (phases, handoff) = phases(phase_line)?;
    let (t0, t1, tp) = (stamp(first)?, stamp(last)?, stamp(phase_line)?);
    let at = |us: u64| (us as f64 * scale) as u64;
    Some(Sample {
        total: at(t1.checked_sub(t0)?),
        phases: phases.into_iter().map(|(n, us)| (n, at(us))).collect(),
        handoff: at(handoff),
        after: at(t1.checked_sub(tp)?),
        rss_kib: 0,
    })
}

/// How much to scale a boot's logged times by: its TSC frequency over the
/// host's (see the module's comment).
fn scale(lines: &[String]) -> f64 {
    match (logged_mhz(lines), host_mhz()) {
        (Some(logged), Some(host)) if host > 0.0 => logged / host,
        _ => 1.0,
    }
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Boots `image` on a guest of `size` until a line matching `end` (or
/// QEMU's exit), watching QEMU's peak resident memory.
fn boot(cfg: &Config, image: &Path, size: &str, end: &str, log: &Path) -> Result<Sample, String> {
    let ovmf = ovmf(cfg)?;
    let _ = fs::remove_file(log);
    fs::create_dir_all(&cfg.mem_dir).map_err(|e| format!("{}: {e}", cfg.mem_dir.display()))?;
    // A directory as mem-path: QEMU makes its file there and unlinks it
    // at once, so nothing is left behind, however QEMU ends.
    let backend = format!(
        "memory-backend-file,id=mem,size={size},mem-path={},share=on",
        cfg.mem_dir.display()
    );
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-M", "q35", "-accel", "tcg", "-cpu", "max,phys-bits=48"])
        .args([
            "-m",
            size,
            "-object",
            &backend,
            "-machine",
            "memory-backend=mem",
        ])
        .arg("-bios")
        .arg(&ovmf)
        .arg("-cdrom")
        .arg(image)
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let start = Instant::now();
    let mut rss = 0;
    let lines = loop {
        if let Some(hwm) = vm_hwm(child.id()) {
            rss = rss.max(hwm);
        }
        let lines = check::clean_lines(&fs::read(log).unwrap_or_default());
        let exited = child.try_wait().map_err(|e| e.to_string())?.is_some();
        if exited || check::find(&lines, end).is_some() {
            break lines;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{size}: no \"{end}\" after {} s",
                TIMEOUT.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let scale = scale(&lines);
    let mut sample = read_log(&lines, "] INFO  baton * booting", end, scale).ok_or_else(|| {
        format!(
            "{size}: the log ({}) lacks the boot's start, its phases or \"{end}\"",
            log.display()
        )
    })?;
    sample.rss_kib = rss;
    Ok(sample)
}

fn ovmf(cfg: &Config) -> Result<PathBuf, String> {
    let out = Command::new(cfg.root.join("iso/find-ovmf.sh"))
        .output()
        .map_err(|e| format!("iso/find-ovmf.sh: {e}"))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || path.is_empty() {
        return Err("no combined OVMF.fd found (iso/find-ovmf.sh); set OVMF=".into());
    }
    Ok(PathBuf::from(path))
}

fn image(cfg: &Config, name: &str, cmdline: &str) -> Result<PathBuf, String> {
    let dir = cfg.build.join("bench-boot");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}.iso"));
    let ok = Command::new(cfg.root.join("iso/mkiso.sh"))
        .current_dir(&cfg.root)
        .arg(&cfg.kernel)
        .arg(&path)
        .arg(cmdline)
        .status()
        .map_err(|e| e.to_string())?
        .success();
    ok.then_some(path)
        .ok_or_else(|| format!("building {name}.iso failed"))
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Each size's samples, reduced to medians per column.
struct Row {
    size: String,
    total: u64,
    spread: (u64, u64),
    phases: Vec<(String, u64)>,
    handoff: u64,
    after: u64,
    rss_kib: u64,
}

fn row(size: &str, samples: &[Sample]) -> Row {
    let col = |f: &dyn Fn(&Sample) -> u64| median(samples.iter().map(f).collect());
    let names: Vec<String> = samples[0].phases.iter().map(|(n, _)| n.clone()).collect();
    let phases = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), col(&|s| s.phases.get(i).map_or(0, |p| p.1))))
        .collect();
    let totals = samples.iter().map(|s| s.total);
    Row {
        size: size.to_owned(),
        total: col(&|s| s.total),
        spread: (totals.clone().min().unwrap_or(0), totals.max().unwrap_or(0)),
        phases,
        handoff: col(&|s| s.handoff),
        after: col(&|s| s.after),
        rss_kib: col(&|s| s.rss_kib),
    }
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        return "-".into();
    }
    format!("{:.2}x", a as f64 / b as f64)
}

fn boot_table(rows: &[Row]) -> String {
    let base = &rows[0];
    let names: Vec<&str> = base.phases.iter().map(|(n, _)| n.as_str()).collect();
    let mut t = format!(
        "| guest RAM | entry to idle (ms) | x {} | {} | handoff | after handoff | QEMU peak RSS | vs {} |\n",
        base.size,
        names.join(" | "),
        base.size
    );
    t += &format!(
        "|---|---|---|{}---|---|---|---|\n",
        "---|".repeat(names.len())
    );
    for r in rows {
        let phases: Vec<String> = r.phases.iter().map(|(_, us)| ms(*us)).collect();
        let rss_delta = r.rss_kib as i64 - base.rss_kib as i64;
        t += &format!(
            "| {} | {} ({}-{}) | {} | {} | {} | {} | {} MiB | {:+} MiB |\n",
            r.size,
            ms(r.total),
            ms(r.spread.0),
            ms(r.spread.1),
            ratio(r.total, base.total),
            phases.join(" | "),
            ms(r.handoff),
            ms(r.after),
            r.rss_kib >> 10,
            rss_delta >> 10
        );
    }
    t
}

fn test_table(rows: &[(String, Vec<u64>)]) -> String {
    let base = median(rows[0].1.clone());
    let mut t = format!(
        "| guest RAM | self-tests in test mode (ms) | x {} |\n|---|---|---|\n",
        rows[0].0
    );
    for (size, runs) in rows {
        let m = median(runs.clone());
        let (lo, hi) = (runs.iter().min().unwrap(), runs.iter().max().unwrap());
        t += &format!(
            "| {size} | {} ({}-{}) | {} |\n",
            ms(m),
            ms(*lo),
            ms(*hi),
            ratio(m, base)
        );
    }
    t
}

fn run(cfg: &Config) -> Result<String, String> {
    let idle = image(cfg, "idle", "")?;
    let test = image(cfg, "test", "test")?;
    let logs = cfg.build.join("bench-boot");
    let mut rows = Vec::new();
    for size in &cfg.sizes {
        let mut samples = Vec::new();
        for n in 0..cfg.runs {
            let log = logs.join(format!("idle-{size}-{n}.log"));
            let s = boot(cfg, &idle, size, "boot complete; idling", &log)?;
            eprintln!(
                "bench-boot: {size} run {}: entry to idle {} ms, peak RSS {} MiB",
                n + 1,
                ms(s.total),
                s.rss_kib >> 10
            );
            samples.push(s);
        }
        rows.push(row(size, &samples));
    }
    let mut tests = Vec::new();
    for size in &cfg.test_sizes {
        let mut runs = Vec::new();
        for n in 0..cfg.runs {
            let log = logs.join(format!("test-{size}-{n}.log"));
            boot(
                cfg,
                &test,
                size,
                "selftest: * tests: * passed, * failed",
                &log,
            )?;
            let lines = check::clean_lines(&fs::read(&log).unwrap_or_default());
            let span = read_log(
                &lines,
                "selftest: running",
                "selftest: * tests: * passed",
                scale(&lines),
            )
            .ok_or_else(|| format!("{size}: no self-test run in {}", log.display()))?;
            if check::find(&lines, "selftest: * tests: * passed, 0 failed").is_none() {
                return Err(format!("{size}: self-tests failed ({})", log.display()));
            }
            eprintln!(
                "bench-boot: {size} test mode run {}: self-tests {} ms",
                n + 1,
                ms(span.total)
            );
            runs.push(span.total);
        }
        tests.push((size.clone(), runs));
    }
    let mut report = String::new();
    if !rows.is_empty() {
        report += &boot_table(&rows);
    }
    if !tests.is_empty() {
        report += "\n";
        report += &test_table(&tests);
    }
    Ok(report)
}

fn main() -> ExitCode {
    let cfg = config();
    if !cfg.kernel.is_file() {
        eprintln!(
            "bench-boot: {} does not exist: run `make kernel` first",
            cfg.kernel.display()
        );
        return ExitCode::FAILURE;
    }
    match run(&cfg) {
        Ok(report) => {
            println!("{report}");
            if let Err(e) = fs::write(&cfg.out, &report) {
                eprintln!("bench-boot: writing {}: {e}", cfg.out.display());
                return ExitCode::FAILURE;
            }
            eprintln!("bench-boot: table written to {}", cfg.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-boot: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_timestamps_and_phases() {
        assert_eq!(stamp("[   12.345678] INFO  x"), Some(12_345_678));
        assert_eq!(stamp("no stamp"), None);
        let line = "[    9.4] INFO  handoff: phases: parse 5123 us, plan 6631 us, total 11754 us";
        let (p, total) = phases(line).unwrap();
        assert_eq!(p, [("parse".to_owned(), 5123), ("plan".to_owned(), 6631)]);
        assert_eq!(total, 11754);
        let lines: Vec<String> = [
            "OVMF noise",
            "[    9.100000] INFO  baton 0.1.0 booting",
            "[    9.300000] INFO  handoff: phases: parse 5 us, total 5 us",
            "[    9.500000] INFO  boot complete; idling",
        ]
        .map(str::to_owned)
        .to_vec();
        let s = read_log(
            &lines,
            "] INFO  baton * booting",
            "boot complete; idling",
            1.0,
        )
        .unwrap();
        assert_eq!((s.total, s.after, s.handoff), (400_000, 200_000, 5));
        assert!(read_log(&lines[..3], "booting", "boot complete", 1.0).is_none());
        // A boot that measured its TSC at 6 GHz on a 3 GHz host: its
        // microseconds are twice as long.
        let s = read_log(&lines, "booting", "boot complete", 2.0).unwrap();
        assert_eq!(s.total, 800_000);
        let cpu = "[ 1.0] INFO  cpu: own stack, GDT/TSS (IST for #DF, NMI, #MC) and IDT loaded; \
                   TSC 15595.190 MHz (Pit)";
        assert_eq!(logged_mhz(&[cpu.to_owned()]), Some(15595.19));
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![5, 1, 3]), 3);
        assert_eq!(ratio(300, 200), "1.50x");
        assert_eq!(ms(1234), "1.2");
    }
}
