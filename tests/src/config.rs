//! The runner's configuration: its command line, the firmware and tools
//! this machine has, and what a case needs of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::{env, thread};

use crate::cases::{Case, Needs};
use crate::limine::Release;
use crate::{qemu, secure_boot};

/// What the runner was asked to do, and where things are.
pub struct Config {
    pub root: PathBuf,
    pub build: PathBuf,
    pub kernel: PathBuf,
    /// The combined `OVMF.fd`, if the distribution ships one.
    pub ovmf: Option<PathBuf>,
    /// Whether QEMU's shutdown-request trace reaches its log, which tells a
    /// power-off from a reset.
    pub shutdown_trace: bool,
    pub jobs: usize,
    pub filters: Vec<String>,
    pub list: bool,
}

fn usage() -> ! {
    eprintln!("usage: boot-tests [--kernel PATH] [--jobs N] [--list] [FILTER...]");
    std::process::exit(2);
}

/// The configuration the command line and this machine give; exits
/// with the usage on a command line it cannot read, and when there is no
/// OVMF.
pub fn config() -> Config {
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
    let ovmf = combined_ovmf(&root);
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

/// The combined `OVMF.fd` `iso/find-ovmf.sh` finds, if any; exits when
/// `$OVMF` names a file that does not exist, or there is no OVMF at all.
fn combined_ovmf(root: &Path) -> Option<PathBuf> {
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
    ovmf
}

/// Why a case cannot run against `release` here, if it cannot.
pub fn unmet(cfg: &Config, case: &Case, release: &Release) -> Option<String> {
    let no_tool = || {
        format!(
            "no `limine` host utility of Limine {} (build it with `make -C {}`; \
             iso/limine-tool.sh)",
            release.version,
            release.dir.display()
        )
    };
    match case.needs {
        Needs::Nothing => None,
        Needs::LimineTool => (!limine_tool(&release.dir)).then(no_tool),
        Needs::Gdb => qemu::on_path("gdb")
            .is_none()
            .then(|| "no gdb on PATH".to_owned()),
        Needs::PflashOvmf => pflash_images().is_none().then(|| {
            "no OVMF_CODE_4M.fd / OVMF_VARS_4M.fd (set OVMF_CODE and OVMF_VARS)".to_owned()
        }),
        Needs::SecureBoot => match secure_boot_kit(cfg) {
            Err(why) => Some(why),
            // `enroll-config` puts the config's hash into Limine.
            Ok(_) => (!limine_tool(&release.dir)).then(no_tool),
        },
    }
}

/// The Secure Boot kit, checked (and the key decrypted) once.
pub fn secure_boot_kit(cfg: &Config) -> Result<&'static secure_boot::Kit, String> {
    static KIT: OnceLock<Result<secure_boot::Kit, String>> = OnceLock::new();
    KIT.get_or_init(|| secure_boot::kit(&cfg.build.join("tests/secure-boot")))
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether `iso/limine-tool.sh` finds, for the release in `dir`, the
/// `limine` host utility that the image scripts run `bios-install` and
/// `enroll-config` with: the release's own, or one on PATH of the
/// release's version. Asked once per release.
fn limine_tool(dir: &Path) -> bool {
    static FOUND: OnceLock<Mutex<HashMap<PathBuf, bool>>> = OnceLock::new();
    let mut found = FOUND.get_or_init(Default::default).lock().unwrap();
    *found.entry(dir.to_path_buf()).or_insert_with(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ has a parent");
        Command::new(root.join("iso/limine-tool.sh"))
            .arg(dir)
            .current_dir(root)
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
    })
}

/// OVMF's split images: `$OVMF_CODE`/`$OVMF_VARS`, else the usual paths.
pub fn pflash_images() -> Option<(PathBuf, PathBuf)> {
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
