//! baton's QEMU boot tests.
//!
//! `boot-tests [--kernel PATH] [--jobs N] [--list] [FILTER...]` builds the
//! images the selected cases need, boots each case in QEMU (OVMF or
//! SeaBIOS) with a timeout, keeps every serial log under
//! `$BUILD_DIR/tests/logs/`, and checks the exit status and the log. A
//! failing case prints why and the tail of its log. Exit status: 0 when
//! every selected case passed.

mod cases;
mod check;
mod qemu;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use std::{env, fs, thread};

use cases::{Case, Exit, Firmware, Kernel, Media, Needs};
use qemu::Ending;

const TIMEOUT: Duration = Duration::from_secs(90);
const TAIL: usize = 40;

struct Config {
    root: PathBuf,
    build: PathBuf,
    kernel: PathBuf,
    /// The combined `OVMF.fd`, if the distribution ships one.
    ovmf: Option<PathBuf>,
    /// Whether QEMU's shutdown-request trace reaches its log, which tells a
    /// power-off from a reset.
    shutdown_trace: bool,
    jobs: usize,
    filters: Vec<String>,
    list: bool,
}

fn usage() -> ! {
    eprintln!("usage: boot-tests [--kernel PATH] [--jobs N] [--list] [FILTER...]");
    std::process::exit(2);
}

fn config() -> Config {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let build = root.join(env::var("BUILD_DIR").unwrap_or_else(|_| "build".into()));
    let mut kernel = build.join("baton");
    let mut jobs = thread::available_parallelism().map_or(2, |n| n.get());
    let mut filters = Vec::new();
    let mut list = false;
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kernel" => kernel = root.join(args.next().unwrap_or_else(|| usage())),
            "--jobs" => {
                jobs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--list" => list = true,
            a if a.starts_with('-') => usage(),
            a => filters.push(a.to_owned()),
        }
    }
    let ovmf = Command::new(root.join("iso/find-ovmf.sh"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if ovmf.is_none() {
        if let Some(given) = env::var_os("OVMF").filter(|v| !v.is_empty()) {
            eprintln!(
                "boot-tests: OVMF={} does not exist",
                given.to_string_lossy()
            );
            std::process::exit(2)
        }
        if pflash_images().is_none() {
            eprintln!("boot-tests: no OVMF firmware found (see iso/find-ovmf.sh)");
            std::process::exit(2)
        }
        eprintln!("boot-tests: no combined OVMF.fd; the -bios OVMF cases run on pflash OVMF");
    }
    let shutdown_trace = qemu::shutdown_trace_works(&build);
    if !shutdown_trace {
        eprintln!(
            "boot-tests: this QEMU writes no `{}` trace to its log (no `log` trace backend?): \
             a power-off and a reset are judged alike",
            qemu::SHUTDOWN_TRACE
        );
    }
    Config {
        root,
        build,
        kernel,
        ovmf,
        shutdown_trace,
        jobs: jobs.max(1),
        filters,
        list,
    }
}

/// The firmware a case boots: where the distribution ships only OVMF's
/// split images, the `-bios` cases run on pflash OVMF instead.
fn firmware(cfg: &Config, case: &Case) -> Firmware {
    match (case.firmware, &cfg.ovmf) {
        (Firmware::Ovmf, None) => Firmware::OvmfPflash,
        (f, _) => f,
    }
}

/// What is wrong with how the machine ended, judged by QEMU's log (with
/// the shutdown-request trace): a power-off where none was expected, or
/// none where one was.
fn power_off_problem(exit: Exit, qemu_log: &str) -> Option<&'static str> {
    let powered_off = qemu_log.contains(qemu::GUEST_SHUTDOWN);
    match exit {
        Exit::Shutdown if !powered_off => Some("QEMU saw no shutdown request from the guest"),
        Exit::Reset | Exit::Pass | Exit::Fail if powered_off => Some("the guest powered off"),
        _ => None,
    }
}

/// Why a case cannot run here, if it cannot.
fn unmet(case: &Case) -> Option<&'static str> {
    match case.needs {
        Needs::Nothing => None,
        Needs::LimineTool => (!limine_tool())
            .then_some("no `limine` host utility matching the Limine release (iso/limine-tool.sh)"),
        Needs::Gdb => qemu::on_path("gdb").is_none().then_some("no gdb on PATH"),
        Needs::PflashOvmf => pflash_images()
            .is_none()
            .then_some("no OVMF_CODE_4M.fd / OVMF_VARS_4M.fd (set OVMF_CODE and OVMF_VARS)"),
    }
}

/// Whether `iso/limine-tool.sh` finds the `limine` host utility that the
/// image scripts run `bios-install` with: the release's own, or one on PATH
/// of the release's version. Asked once.
fn limine_tool() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ has a parent");
        Command::new(root.join("iso/limine-tool.sh"))
            .current_dir(root)
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
    })
}

/// OVMF's split images: `$OVMF_CODE`/`$OVMF_VARS`, else the usual paths.
fn pflash_images() -> Option<(PathBuf, PathBuf)> {
    // Set but empty (as `make` exports unset variables) counts as unset.
    let var = |name| env::var_os(name).filter(|v| !v.is_empty());
    if let (Some(code), Some(vars)) = (var("OVMF_CODE"), var("OVMF_VARS")) {
        return Some((code.into(), vars.into()));
    }
    [
        (
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
        ),
        (
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_VARS.fd",
        ),
        (
            "/usr/share/edk2/ovmf/OVMF_CODE.fd",
            "/usr/share/edk2/ovmf/OVMF_VARS.fd",
        ),
        (
            "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
            "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
        ),
    ]
    .iter()
    .map(|(c, v)| (PathBuf::from(c), PathBuf::from(v)))
    .find(|(c, v)| c.is_file() && v.is_file())
}

/// Builds a kernel variant in its own target directory.
fn build_kernel(cfg: &Config, kernel: Kernel) -> Result<PathBuf, String> {
    let Some(feature) = kernel.feature() else {
        if !cfg.kernel.is_file() {
            return Err(format!(
                "{} does not exist: run `make kernel` first",
                cfg.kernel.display()
            ));
        }
        return Ok(cfg.kernel.clone());
    };
    let target_dir = cfg.root.join("target/variants").join(feature);
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&cfg.root)
        .args(["build", "-q", "-p", "kernel", "--release"])
        .args(["--target", "x86_64-unknown-none", "--features", feature])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the kernel with feature {feature} failed"));
    }
    Ok(target_dir.join("x86_64-unknown-none/release/baton"))
}

type ImageKey = (Kernel, bool, &'static str);

/// Builds every image the cases need, once each.
fn build_images(cfg: &Config, cases: &[&Case]) -> Result<HashMap<ImageKey, PathBuf>, String> {
    let dir = cfg.build.join("tests/images");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut kernels = HashMap::new();
    let mut images = HashMap::new();
    for case in cases {
        let key = image_key(case);
        if images.contains_key(&key) {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = kernels.entry(case.kernel) {
            slot.insert(build_kernel(cfg, case.kernel)?);
        }
        let disk = key.1;
        let path = dir.join(format!(
            "{}.{}",
            images.len(),
            if disk { "hdd" } else { "iso" }
        ));
        let script = cfg
            .root
            .join(if disk { "iso/mkhdd.sh" } else { "iso/mkiso.sh" });
        let status = Command::new(script)
            .current_dir(&cfg.root)
            .arg(&kernels[&case.kernel])
            .arg(&path)
            .arg(case.cmdline)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("building image {} failed", path.display()));
        }
        images.insert(key, path);
    }
    Ok(images)
}

fn image_key(case: &Case) -> ImageKey {
    (case.kernel, case.media != Media::Cdrom, case.cmdline)
}

fn qemu_args(cfg: &Config, case: &Case, image: &Path, vars: &Path) -> Vec<String> {
    let mut a: Vec<String> = ["-M", case.machine, "-accel", "tcg", "-m", case.memory]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if case.memory_file {
        // A directory as mem-path: QEMU makes its sparse file there and
        // unlinks it at once, so nothing stays behind, however QEMU ends.
        let dir = cfg.build.join("tests/mem");
        let _ = fs::create_dir_all(&dir);
        a.extend([
            "-object".into(),
            format!(
                "memory-backend-file,id=mem,size={},mem-path={},share=on",
                case.memory,
                dir.display()
            ),
            "-machine".into(),
            "memory-backend=mem".into(),
        ]);
    }
    if case.debug_exit {
        a.extend([
            "-device".into(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        ]);
    }
    if let Some(cpu) = case.cpu {
        a.extend(["-cpu".into(), cpu.into()]);
    }
    if case.smp > 1 {
        a.extend(["-smp".into(), case.smp.to_string()]);
    }
    match firmware(cfg, case) {
        Firmware::Ovmf => {
            let ovmf = cfg.ovmf.as_ref().expect("firmware() checked");
            a.extend(["-bios".into(), ovmf.display().to_string()])
        }
        Firmware::OvmfPflash => {
            let (code, _) = pflash_images().expect("checked by unmet() or at start");
            a.extend([
                "-drive".into(),
                format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={}",
                    code.display()
                ),
                "-drive".into(),
                format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
            ]);
        }
        Firmware::SeaBios => {}
    }
    let image = image.display().to_string();
    match case.media {
        Media::Cdrom => a.extend(["-cdrom".into(), image]),
        Media::Disk => a.extend([
            "-drive".into(),
            // snapshot: cases share images and may run at once.
            format!("if=ide,index=0,format=raw,media=disk,snapshot=on,file={image}"),
        ]),
        Media::UsbDisk => a.extend([
            "-device".into(),
            "qemu-xhci,id=xhci".into(),
            "-drive".into(),
            format!("if=none,id=stick,format=raw,snapshot=on,file={image}"),
            "-device".into(),
            "usb-storage,bus=xhci.0,drive=stick".into(),
        ]),
    }
    a
}

enum Verdict {
    Pass,
    Skip(&'static str),
    Fail(Vec<String>),
}

/// Boots one case and judges it.
fn run_case(cfg: &Config, case: &Case, image: &Path) -> (Verdict, String) {
    let logs = cfg.build.join("tests/logs");
    let _ = fs::create_dir_all(&logs);
    let serial_log = logs.join(format!("{}.log", case.name));
    let qemu_log = logs.join(format!("{}.qemu.log", case.name));
    // A fresh variable store per case, kept across its boots.
    let vars = logs.join(format!("{}.vars.fd", case.name));
    if firmware(cfg, case) == Firmware::OvmfPflash {
        let (_, template) = pflash_images().expect("checked by unmet() or at start");
        if let Err(e) = fs::copy(&template, &vars) {
            return (
                Verdict::Fail(vec![format!("copying {}: {e}", template.display())]),
                String::new(),
            );
        }
    }
    if case.gdb {
        return gdb_case(cfg, case, image, &vars, &serial_log, &qemu_log);
    }
    let args = qemu_args(cfg, case, image, &vars);
    let mut problems = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut run = None;
    for boot in 1..=case.boots {
        let r = qemu::boot(&args, &serial_log, &qemu_log, TIMEOUT);
        elapsed += r.elapsed;
        let which = if case.boots > 1 {
            format!("boot {boot}: ")
        } else {
            String::new()
        };
        if r.qemu_log.contains("Triple fault") {
            problems.push(format!("{which}the guest triple-faulted"));
        }
        if cfg.shutdown_trace
            && let Some(problem) = power_off_problem(case.exit, &r.qemu_log)
        {
            problems.push(format!("{which}{problem}"));
        }
        match r.ending {
            Ending::Exited(code) if code == case.exit.status() => {}
            Ending::Exited(code) => problems.push(format!(
                "{which}QEMU exited with {code}, expected {} ({:?})",
                case.exit.status(),
                case.exit
            )),
            Ending::Signalled => problems.push(format!("{which}QEMU was killed by a signal")),
            Ending::TimedOut => {
                problems.push(format!("{which}timed out after {} s", TIMEOUT.as_secs()))
            }
        }
        let failed = !problems.is_empty();
        run = Some(r);
        if failed {
            break;
        }
    }
    let run = run.expect("at least one boot");
    let lines = check::clean_lines(&run.serial);
    for pattern in case.common.iter().chain(case.lines) {
        if check::find(&lines, pattern).is_none() {
            problems.push(format!("no line matches \"{pattern}\""));
        }
    }
    let never_unless = if case.faults {
        &[][..]
    } else {
        cases::NEVER_UNLESS_FAULTING
    };
    for pattern in cases::NEVER.iter().chain(never_unless).chain(case.absent) {
        if let Some((i, line)) = check::find(&lines, pattern) {
            problems.push(format!(
                "line {} matches forbidden \"{pattern}\": {line}",
                i + 1
            ));
        }
    }
    let timing = format!("{:.1} s", elapsed.as_secs_f64());
    if problems.is_empty() {
        (Verdict::Pass, timing)
    } else {
        let start = lines.len().saturating_sub(TAIL);
        problems.push(format!(
            "--- last {} lines of {} ---",
            lines.len() - start,
            serial_log.display()
        ));
        problems.extend(lines[start..].iter().map(|l| format!("  | {l}")));
        if !run.stderr.trim().is_empty() {
            problems.push("--- QEMU's error output ---".to_owned());
            problems.extend(run.stderr.lines().map(|l| format!("  | {l}")));
        }
        (Verdict::Fail(problems), timing)
    }
}

/// Starts QEMU halted with its gdbstub and has GDB, with the project's
/// script, break at `kmain`.
fn gdb_case(
    cfg: &Config,
    case: &Case,
    image: &Path,
    vars: &Path,
    serial_log: &Path,
    qemu_log: &Path,
) -> (Verdict, String) {
    let mut args = qemu_args(cfg, case, image, vars);
    args.extend(["-s".into(), "-S".into()]);
    let (run, gdb) = thread::scope(|s| {
        let qemu = s.spawn(|| qemu::boot(&args, serial_log, qemu_log, TIMEOUT));
        // Give QEMU a moment to open its gdbstub.
        thread::sleep(Duration::from_millis(500));
        let gdb = Command::new("timeout")
            .current_dir(&cfg.root)
            .args(["60", "gdb", "-batch", "-nx", "-x", "baton.gdb"])
            .args(["-ex", "break kmain", "-ex", "continue"])
            .args(["-ex", "info symbol $pc", "-ex", "kill"])
            .output();
        (qemu.join().expect("QEMU thread"), gdb)
    });
    let timing = format!("{:.1} s", run.elapsed.as_secs_f64());
    let output = match gdb {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => return (Verdict::Fail(vec![format!("cannot run gdb: {e}")]), timing),
    };
    // GDB stops after kmain's prologue and may name a callee inlined
    // there; the symbol of the stop address is what proves the breakpoint.
    let stopped = output.lines().any(|l| l.starts_with("Breakpoint 1, "));
    let in_kmain = output.lines().any(|l| {
        l.ends_with(" in section .text") && (l.starts_with("kmain in") || l.starts_with("kmain + "))
    });
    if stopped && in_kmain {
        (Verdict::Pass, timing)
    } else {
        let mut problems = vec!["GDB did not stop at kmain; its output:".to_owned()];
        problems.extend(output.lines().map(|l| format!("  | {l}")));
        (Verdict::Fail(problems), timing)
    }
}

fn main() -> ExitCode {
    let cfg = config();
    let all = cases::all();
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| {
            cfg.filters.is_empty() || cfg.filters.iter().any(|f| c.name.contains(f.as_str()))
        })
        .collect();
    if cfg.list {
        for c in &selected {
            println!("{:28} {}", c.name, c.about);
        }
        return ExitCode::SUCCESS;
    }
    if selected.is_empty() {
        eprintln!("boot-tests: no case matches {:?}", cfg.filters);
        return ExitCode::FAILURE;
    }
    let runnable: Vec<&Case> = selected
        .iter()
        .copied()
        .filter(|c| unmet(c).is_none())
        .collect();
    let images = match build_images(&cfg, &runnable) {
        Ok(images) => images,
        Err(e) => {
            eprintln!("boot-tests: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "boot-tests: {} cases, {} images, {} at a time",
        selected.len(),
        images.len(),
        cfg.jobs
    );

    let queue = Mutex::new(selected.iter().copied());
    let results = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..cfg.jobs {
            s.spawn(|| {
                loop {
                    let Some(case) = queue.lock().unwrap().next() else {
                        break;
                    };
                    let (verdict, timing) = match unmet(case) {
                        Some(why) => (Verdict::Skip(why), String::new()),
                        None => run_case(&cfg, case, &images[&image_key(case)]),
                    };
                    let mut out = String::new();
                    match &verdict {
                        Verdict::Pass => out += &format!("PASS {} ({timing})\n", case.name),
                        Verdict::Skip(why) => out += &format!("SKIP {}: {why}\n", case.name),
                        Verdict::Fail(problems) => {
                            out += &format!("FAIL {} ({timing}): {}\n", case.name, case.about);
                            for p in problems {
                                out += &format!("    {p}\n");
                            }
                        }
                    }
                    print!("{out}");
                    results.lock().unwrap().push(verdict);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let count = |f: fn(&Verdict) -> bool| results.iter().filter(|v| f(v)).count();
    let (passed, skipped, failed) = (
        count(|v| matches!(v, Verdict::Pass)),
        count(|v| matches!(v, Verdict::Skip(_))),
        count(|v| matches!(v, Verdict::Fail(_))),
    );
    println!("boot-tests: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ovmf: Option<&str>) -> Config {
        Config {
            root: PathBuf::new(),
            build: PathBuf::new(),
            kernel: PathBuf::new(),
            ovmf: ovmf.map(PathBuf::from),
            shutdown_trace: true,
            jobs: 1,
            filters: Vec::new(),
            list: false,
        }
    }

    #[test]
    fn bios_cases_boot_pflash_without_a_combined_image() {
        let by_name = |name| {
            cases::all()
                .iter()
                .find(|c| c.name == name)
                .copied()
                .expect("case exists")
        };
        let bios = by_name("uefi-cd");
        let pflash = by_name("efi-pflash-persist");
        let seabios = by_name("bios-cd");
        let with = config(Some("/x/OVMF.fd"));
        let without = config(None);
        assert_eq!(firmware(&with, &bios), Firmware::Ovmf);
        assert_eq!(firmware(&without, &bios), Firmware::OvmfPflash);
        assert_eq!(firmware(&with, &pflash), Firmware::OvmfPflash);
        assert_eq!(firmware(&without, &seabios), Firmware::SeaBios);
        let args = qemu_args(&without, &bios, Path::new("x.iso"), Path::new("v.fd"));
        assert!(args.iter().any(|a| a.starts_with("if=pflash")), "{args:?}");
        assert!(!args.iter().any(|a| a == "-bios"), "{args:?}");
    }

    #[test]
    fn power_off_and_reset_are_told_apart() {
        let off = "qemu_system_shutdown_request reason=6\n";
        let quit = "qemu_system_shutdown_request reason=2\n";
        assert_eq!(power_off_problem(Exit::Shutdown, off), None);
        assert!(power_off_problem(Exit::Shutdown, "").is_some());
        assert!(power_off_problem(Exit::Shutdown, quit).is_some());
        assert_eq!(power_off_problem(Exit::Reset, ""), None);
        assert!(power_off_problem(Exit::Reset, off).is_some());
        assert!(power_off_problem(Exit::Pass, off).is_some());
    }
}
