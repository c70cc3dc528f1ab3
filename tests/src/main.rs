//! baton's QEMU boot tests.
//!
//! `boot-tests [--kernel PATH] [--jobs N] [--list] [FILTER...]` builds the
//! images the selected cases need, boots each case in QEMU (OVMF or
//! SeaBIOS) with a timeout, keeps every serial log under
//! `$BUILD_DIR/tests/logs/`, and checks the exit status and the log. A
//! failing case prints why and the tail of its log. Exit status: 0 when
//! every selected case passed.
//!
//! Every case boots the Limine release the image scripts find; the cases
//! marked `across_releases` also boot every other release installed (see
//! `limine.rs`), as `NAME@VERSION`. Each result names its release.

mod cases;
mod check;
mod config;
mod gdb;
mod images;
mod judge;
mod limine;
mod machine;
mod qemu;
mod screen;
mod secure_boot;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use std::{env, fs, thread};

use cases::Case;
use config::Config;
use images::ImageKey;
use limine::Release;
use qemu::Watch;

/// How long a case may run: the largest guests (1 TiB) boot in seconds,
/// since nothing at boot grows with RAM.
const TIMEOUT: Duration = Duration::from_secs(90);

/// How long GDB may take over a session (it stops the machine too).
const GDB_TIMEOUT: Duration = Duration::from_secs(150);
const TAIL: usize = 40;

/// The default release and the others the cases marked `across_releases`
/// run against.
struct Releases {
    default: Release,
    found: limine::Found,
}

/// Finds the default release as the image scripts do (which may clone
/// it), and the others installed.
fn releases(cfg: &Config) -> Result<Releases, String> {
    let out = Command::new(cfg.root.join("iso/limine-dir.sh"))
        .current_dir(&cfg.root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("iso/limine-dir.sh: {e}"))?;
    if !out.status.success() {
        return Err("no Limine release (iso/limine-dir.sh says why, above)".into());
    }
    let dir = cfg.root.join(String::from_utf8_lossy(&out.stdout).trim());
    let default = Release::open(&dir)?;
    let listed = env::var("LIMINE_DIRS").ok();
    let explicit = listed.as_deref().is_some_and(|l| !l.trim().is_empty());
    let candidates = limine::candidate_dirs(listed.as_deref(), Path::new("/usr/share"));
    let found = limine::discover(&default, &candidates, explicit);
    Ok(Releases { default, found })
}

/// One boot: a case against a release.
struct Job<'a> {
    case: &'a Case,
    release: &'a Release,
    /// The case's name, with `@VERSION` for a release other than the
    /// default.
    name: String,
}

/// What the runner does with a selected case against one release.
enum Planned<'a> {
    Run(Job<'a>),
    /// A release the project tests is not here: skipped, with the reason.
    Missing {
        name: String,
        why: String,
    },
}

impl Planned<'_> {
    fn name(&self) -> &str {
        match self {
            Planned::Run(job) => &job.name,
            Planned::Missing { name, .. } => name,
        }
    }
}

/// Every case against the default release; the `across_releases` ones
/// also against each other release found, or skipped for each tested one
/// missing.
fn plan<'a>(cases: &'a [Case], releases: &'a Releases) -> Vec<Planned<'a>> {
    let mut planned = Vec::new();
    for case in cases {
        planned.push(Planned::Run(Job {
            case,
            release: &releases.default,
            name: case.name.to_owned(),
        }));
        if !case.across_releases {
            continue;
        }
        for release in &releases.found.others {
            planned.push(Planned::Run(Job {
                case,
                release,
                name: format!("{}@{}", case.name, release.version),
            }));
        }
        for (version, why) in &releases.found.missing {
            planned.push(Planned::Missing {
                name: format!("{}@{version}", case.name),
                why: why.clone(),
            });
        }
    }
    planned
}

enum Verdict {
    Pass,
    Skip(String),
    Fail(Vec<String>),
}

/// Boots one job and judges it.
fn run_case(cfg: &Config, job: &Job, image: &Path) -> (Verdict, String) {
    let case = job.case;
    let logs = cfg.build.join("tests/logs");
    let _ = fs::create_dir_all(&logs);
    let serial_log = logs.join(format!("{}.log", job.name));
    let qemu_log = logs.join(format!("{}.qemu.log", job.name));
    // A fresh variable store per case, kept across its boots.
    let vars = logs.join(format!("{}.vars.fd", job.name));
    if let Some(template) = machine::vars_template(cfg, case)
        && let Err(e) = fs::copy(&template, &vars)
    {
        return (
            Verdict::Fail(vec![format!("copying {}: {e}", template.display())]),
            String::new(),
        );
    }
    if let Some(session) = case.gdb {
        return gdb_case(cfg, case, session, (image, &vars, &serial_log, &qemu_log));
    }
    let args = machine::qemu_args(cfg, case, image, &vars);
    let ppm = logs.join(format!("{}.screen.ppm", job.name));
    let screendump = case
        .screen
        .map(|marker| qemu::Screendump { marker, ppm: &ppm });
    let boots = boot_all(cfg, case, &args, (&serial_log, &qemu_log), screendump);
    let run = &boots.last;
    let lines = check::clean_lines(&run.serial);
    let mut problems = boots.problems;
    if problems.is_empty() {
        problems.extend(judge::varying_problems(case.varies, &boots.varied));
    }
    let expected = logs.join(format!("{}.expected.ppm", job.name));
    problems.extend(screen_problem(run, &lines, &ppm, &expected));
    problems.extend(judge::log_problems(job, &lines));
    let timing = format!("{:.1} s", boots.elapsed.as_secs_f64());
    if problems.is_empty() {
        return (Verdict::Pass, timing);
    }
    problems.extend(failure_context(&lines, &serial_log, &run.stderr));
    (Verdict::Fail(problems), timing)
}

/// What a case's boots left: the last one, their time together, the
/// lines that must vary as each boot printed them, and what went wrong.
struct Boots {
    last: qemu::Run,
    elapsed: Duration,
    /// `varied[boot][i]` is the line `case.varies[i]` matched in that boot.
    varied: Vec<Vec<Option<String>>>,
    problems: Vec<String>,
}

/// Boots a case as many times as it asks, up to the first boot that
/// ends wrong; the serial log goes to `logs.0`, QEMU's to `logs.1`.
fn boot_all(
    cfg: &Config,
    case: &Case,
    args: &[String],
    logs: (&Path, &Path),
    screendump: Option<qemu::Screendump<'_>>,
) -> Boots {
    let (serial_log, qemu_log) = logs;
    let watch = Watch {
        stop_at: case.stop_at,
        deadline: case.deadline.map(Duration::from_secs),
    };
    let mut problems = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut run = None;
    let mut varied = Vec::new();
    for boot in 1..=case.boots {
        let r = qemu::boot(args, serial_log, qemu_log, TIMEOUT, screendump, watch);
        let lines = check::clean_lines(&r.serial);
        varied.push(
            case.varies
                .iter()
                .map(|p| check::find(&lines, p).map(|(_, l)| judge::without_time(l).to_owned()))
                .collect::<Vec<_>>(),
        );
        elapsed += r.elapsed;
        let which = if case.boots > 1 {
            format!("boot {boot}: ")
        } else {
            String::new()
        };
        problems.extend(
            ending_problems(cfg, case, &r)
                .into_iter()
                .map(|p| format!("{which}{p}")),
        );
        let failed = !problems.is_empty();
        run = Some(r);
        if failed {
            break;
        }
    }
    Boots {
        last: run.expect("at least one boot"),
        elapsed,
        varied,
        problems,
    }
}

/// What is wrong with how one boot ended: a triple fault, a power-off or
/// reset where the case expects none, QEMU's exit.
fn ending_problems(cfg: &Config, case: &Case, run: &qemu::Run) -> Vec<String> {
    let mut problems = Vec::new();
    if run.qemu_log.contains("Triple fault") {
        problems.push("the guest triple-faulted".to_owned());
    }
    if cfg.shutdown_trace
        && let Some(problem) = judge::power_off_problem(case.exit, &run.qemu_log)
    {
        problems.push(problem.to_owned());
    }
    if let Some(problem) = judge::ending_problem(case.exit, &run.ending, TIMEOUT) {
        problems.push(problem);
    }
    problems
}

/// What is wrong with the screen a boot dumped into `ppm`, if it dumped
/// one; what was expected goes to `expected`.
fn screen_problem(
    run: &qemu::Run,
    lines: &[String],
    ppm: &Path,
    expected: &Path,
) -> Option<String> {
    let result = run.screendump.as_ref()?;
    result
        .clone()
        .and_then(|()| judge::check_screen(&run.serial, lines, ppm, expected))
        .err()
        .map(|e| format!("screen: {e}"))
}

/// What a failure shows after its problems: the end of the serial log,
/// and QEMU's error output if it wrote any.
fn failure_context(lines: &[String], serial_log: &Path, stderr: &str) -> Vec<String> {
    let start = lines.len().saturating_sub(TAIL);
    let mut context = vec![format!(
        "--- last {} lines of {} ---",
        lines.len() - start,
        serial_log.display()
    )];
    context.extend(lines[start..].iter().map(|l| format!("  | {l}")));
    if !stderr.trim().is_empty() {
        context.push("--- QEMU's error output ---".to_owned());
        context.extend(stderr.lines().map(|l| format!("  | {l}")));
    }
    context
}

/// Starts QEMU halted with its gdbstub on a port of its own and has GDB,
/// with the project's script and helpers, run the case's session.
fn gdb_case(
    cfg: &Config,
    case: &Case,
    session: cases::Gdb,
    paths: (&Path, &Path, &Path, &Path),
) -> (Verdict, String) {
    let (image, vars, serial_log, qemu_log) = paths;
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => {
            return (
                Verdict::Fail(vec![format!("no free port: {e}")]),
                String::new(),
            );
        }
    };
    let mut args = machine::qemu_args(cfg, case, image, vars);
    args.extend(["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()]);
    let mut gdb = gdb_command(cfg, case, session, port);
    let (run, output) = boot_under_gdb(&args, &mut gdb, (serial_log, qemu_log));
    let timing = format!("{:.1} s", run.elapsed.as_secs_f64());
    let output = match output {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => return (Verdict::Fail(vec![format!("cannot run gdb: {e}")]), timing),
    };
    let _ = fs::write(serial_log.with_extension("gdb.log"), &output);
    let serial = check::clean_lines(&run.serial);
    let mut problems = gdb::judge(session, &output, &serial);
    if problems.is_empty() {
        return (Verdict::Pass, timing);
    }
    problems.push("--- GDB's output ---".to_owned());
    problems.extend(output.lines().map(|l| format!("  | {l}")));
    (Verdict::Fail(problems), timing)
}

/// GDB, under `timeout`, with the project's script, the case's kernel and
/// its session's commands, to attach to the gdbstub on `port`.
fn gdb_command(cfg: &Config, case: &Case, session: cases::Gdb, port: u16) -> Command {
    let kernel = images::kernel_path(cfg, case.kernel);
    let mut gdb = Command::new("timeout");
    gdb.current_dir(&cfg.root)
        .env("BATON_GDB_PORT", port.to_string())
        .args([
            &GDB_TIMEOUT.as_secs().to_string(),
            "gdb",
            "-batch",
            "-nx",
            "-x",
            "baton.gdb",
        ])
        .arg("-ex")
        .arg(format!("file {}", kernel.display()));
    for command in gdb::commands(session) {
        gdb.arg("-ex").arg(command);
    }
    gdb
}

/// Boots QEMU with `args` and runs `gdb` against it once its gdbstub is
/// up; the serial log goes to `logs.0`, QEMU's to `logs.1`.
fn boot_under_gdb(
    args: &[String],
    gdb: &mut Command,
    logs: (&Path, &Path),
) -> (qemu::Run, std::io::Result<std::process::Output>) {
    let (serial_log, qemu_log) = logs;
    thread::scope(|s| {
        let qemu = s.spawn(|| {
            qemu::boot(
                args,
                serial_log,
                qemu_log,
                GDB_TIMEOUT + TIMEOUT,
                None,
                Watch::default(),
            )
        });
        // Give QEMU a moment to open its gdbstub.
        thread::sleep(Duration::from_millis(500));
        let output = gdb.output();
        (qemu.join().expect("QEMU thread"), output)
    })
}

/// One result line (and, for a failure, its problems).
fn report(name: &str, release: Option<&Release>, verdict: &Verdict, timing: &str) -> String {
    let what = release.map_or(String::new(), |r| format!(" [Limine {}]", r.version));
    match verdict {
        Verdict::Pass => format!("PASS {name}{what} ({timing})\n"),
        Verdict::Skip(why) => format!("SKIP {name}{what}: {why}\n"),
        Verdict::Fail(problems) => {
            let mut out = format!("FAIL {name}{what} ({timing})\n");
            for p in problems {
                out += &format!("    {p}\n");
            }
            out
        }
    }
}

fn main() -> ExitCode {
    let cfg = config::config();
    let all = cases::all();
    if cfg.list {
        list(&cfg, &all);
        return ExitCode::SUCCESS;
    }
    let releases = match releases(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("boot-tests: {e}");
            return ExitCode::FAILURE;
        }
    };
    for why in &releases.found.unusable {
        eprintln!("boot-tests: not a usable Limine release: {why}");
    }
    let planned: Vec<Planned> = plan(&all, &releases)
        .into_iter()
        .filter(|p| selected(&cfg, p.name()))
        .collect();
    if planned.is_empty() {
        eprintln!("boot-tests: no case matches {:?}", cfg.filters);
        return ExitCode::FAILURE;
    }
    let runnable: Vec<&Job> = planned
        .iter()
        .filter_map(|p| match p {
            Planned::Run(job) if config::unmet(&cfg, job.case, job.release).is_none() => Some(job),
            _ => None,
        })
        .collect();
    let built = match images::build_images(&cfg, &runnable) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("boot-tests: {e}");
            return ExitCode::FAILURE;
        }
    };
    announce(&cfg, planned.len(), built.len(), &releases);
    let results = run_all(&cfg, &planned, &built);
    tally(&results)
}

/// Whether the command line selects the case (or job) `name`: every name
/// when it names none.
fn selected(cfg: &Config, name: &str) -> bool {
    cfg.filters.is_empty() || cfg.filters.iter().any(|f| name.contains(f.as_str()))
}

/// Prints the selected cases, one a line, with what each is about.
fn list(cfg: &Config, all: &[Case]) {
    for c in all.iter().filter(|c| selected(cfg, c.name)) {
        let across = if c.across_releases {
            " [every Limine release]"
        } else {
            ""
        };
        println!("{:28} {}{across}", c.name, c.about);
    }
}

/// Says what the run holds: how many cases and images, how many at a
/// time, and the Limine releases.
fn announce(cfg: &Config, case_count: usize, image_count: usize, releases: &Releases) {
    let others: Vec<String> = releases
        .found
        .others
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    println!(
        "boot-tests: {} cases, {} images, {} at a time; Limine {} ({}){}",
        case_count,
        image_count,
        cfg.jobs,
        releases.default.version,
        releases.default.dir.display(),
        if others.is_empty() {
            String::new()
        } else {
            format!(
                ", and {} for the cases run on every release",
                others.join(", ")
            )
        }
    );
}

/// Runs the planned jobs, `cfg.jobs` at a time, printing each result as
/// it comes; their verdicts, in the order they came.
fn run_all(cfg: &Config, planned: &[Planned], built: &HashMap<ImageKey, PathBuf>) -> Vec<Verdict> {
    let queue = Mutex::new(planned.iter());
    let results = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..cfg.jobs {
            s.spawn(|| {
                loop {
                    let Some(planned) = queue.lock().unwrap().next() else {
                        break;
                    };
                    let (verdict, out) = run_planned(cfg, planned, built);
                    results.lock().unwrap().push(verdict);
                    print!("{out}");
                }
            });
        }
    });
    results.into_inner().unwrap()
}

/// Runs a planned job, or skips it; its verdict and what to print of it.
fn run_planned(
    cfg: &Config,
    planned: &Planned,
    built: &HashMap<ImageKey, PathBuf>,
) -> (Verdict, String) {
    match planned {
        Planned::Missing { name, why } => {
            let verdict = Verdict::Skip(why.clone());
            let out = report(name, None, &verdict, "");
            (verdict, out)
        }
        Planned::Run(job) => {
            let (verdict, timing) = match config::unmet(cfg, job.case, job.release) {
                Some(why) => (Verdict::Skip(why), String::new()),
                None => run_case(cfg, job, &built[&images::image_key(job)]),
            };
            let mut out = report(&job.name, Some(job.release), &verdict, &timing);
            if matches!(verdict, Verdict::Fail(_)) {
                out = out.replacen('\n', &format!(": {}\n", job.case.about), 1);
            }
            (verdict, out)
        }
    }
}

/// Prints how many cases passed, failed and were skipped: success when
/// none failed.
fn tally(results: &[Verdict]) -> ExitCode {
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

    fn release(dir: &str, v: limine::Version) -> Release {
        Release {
            dir: PathBuf::from(dir),
            version: v,
        }
    }

    #[test]
    fn every_release_for_the_marked_cases_and_a_skip_per_missing_one() {
        use limine::Version;
        let all = cases::all();
        let releases = Releases {
            default: release("/d", Version(8, 2, 0)),
            found: limine::Found {
                others: vec![release("/e", Version(11, 4, 1))],
                unusable: Vec::new(),
                missing: vec![(Version(9, 6, 7), "not installed".into())],
            },
        };
        let planned = plan(&all, &releases);
        let names: Vec<&str> = planned.iter().map(Planned::name).collect();
        assert!(names.contains(&"uefi-cd"));
        assert!(names.contains(&"uefi-cd@11.4.1"));
        assert!(names.contains(&"secure-boot-tampered-kernel@11.4.1"));
        // Only the marked cases run on every release.
        assert!(names.contains(&"ptdump") && !names.contains(&"ptdump@11.4.1"));
        let skipped = planned
            .iter()
            .filter(|p| matches!(p, Planned::Missing { .. }))
            .count();
        let marked = all.iter().filter(|c| c.across_releases).count();
        assert_eq!(skipped, marked);
        assert_eq!(names.len(), all.len() + 2 * marked);
        // A job on another release must show that release in its log.
        let job = planned
            .iter()
            .find_map(|p| match p {
                Planned::Run(j) if j.name == "uefi-cd@11.4.1" => Some(j),
                _ => None,
            })
            .unwrap();
        let lines = judge::release_lines(job);
        assert!(lines.iter().any(|l| l.contains("Limine 11.4.1,")));
        assert!(lines.iter().any(|l| l.contains("in effect 5 (")));
    }
}
