//! Building what the cases boot: the kernel variants, and the images
//! holding a kernel, a command line and a Limine release.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

use crate::cases::{Case, Kernel, Media, Signing};
use crate::config::{self, Config};
use crate::{Job, secure_boot};

/// What an image is built from: kernel, medium (disk or CD), command
/// line, signing, release.
pub type ImageKey = (Kernel, bool, String, Signing, PathBuf);

/// One line of progress, shown at once even when stdout is a pipe.
fn progress(what: std::fmt::Arguments<'_>) {
    println!("boot-tests: {what}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

pub fn image_key(job: &Job) -> ImageKey {
    let case = job.case;
    (
        case.kernel,
        case.media != Media::Cdrom,
        boot_cmdline(case),
        case.signing,
        job.release.dir.clone(),
    )
}

/// Builds every image the jobs need, once each, saying what it builds as
/// it goes (a kernel variant takes a minute, an image about a second).
pub fn build_images(cfg: &Config, jobs: &[&Job]) -> Result<HashMap<ImageKey, PathBuf>, String> {
    let dir = cfg.build.join("tests/images");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut keys: Vec<ImageKey> = Vec::new();
    for job in jobs {
        if !keys.contains(&image_key(job)) {
            keys.push(image_key(job));
        }
    }
    let mut kernels = HashMap::new();
    let mut images = HashMap::new();
    for job in jobs {
        let case = job.case;
        let key = image_key(job);
        if images.contains_key(&key) {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = kernels.entry(case.kernel) {
            if let Some(feature) = case.kernel.feature() {
                progress(format_args!("building the kernel with feature {feature}"));
            }
            slot.insert(build_kernel(cfg, case.kernel)?);
        }
        let disk = key.1;
        let path = dir.join(format!(
            "{}.{}",
            images.len(),
            if disk { "hdd" } else { "iso" }
        ));
        progress(format_args!(
            "image {} of {}: {} (Limine {}, command line \"{}\")",
            images.len() + 1,
            keys.len(),
            path.display(),
            job.release.version,
            key.2
        ));
        build_image(cfg, job, &key, &kernels[&case.kernel], &path)?;
        images.insert(key, path);
    }
    Ok(images)
}

/// Builds the image `key` describes into `path` with the image scripts,
/// holding `kernel`, for `job`: signed, and tampered with, as its case
/// asks.
fn build_image(
    cfg: &Config,
    job: &Job,
    key: &ImageKey,
    kernel: &Path,
    path: &Path,
) -> Result<(), String> {
    let case = job.case;
    let disk = key.1;
    let script = cfg
        .root
        .join(if disk { "iso/mkhdd.sh" } else { "iso/mkiso.sh" });
    let mut cmd = Command::new(script);
    cmd.current_dir(&cfg.root)
        .env("LIMINE_DIR", &job.release.dir)
        .env_remove("SECURE_BOOT")
        .arg(kernel)
        .arg(path)
        .arg(cmdline_bytes(&key.2));
    if case.signing != Signing::Off {
        let kit = config::secure_boot_kit(cfg)?;
        cmd.env("SECURE_BOOT", "1")
            .env("SB_KEY", &kit.key)
            .env("SB_CERT", &kit.cert);
    }
    let status = cmd.status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building image {} failed", path.display()));
    }
    // The images' directory holds the tampering's scratch files too.
    let dir = path.parent().expect("an image's path names its directory");
    secure_boot::tamper(path, case.signing, dir)
        .map_err(|e| format!("image {}: {e}", path.display()))
}

/// The command line a case boots with: its own, after `loglevel=debug`
/// unless it sets a level itself or checks the default log, so that the
/// cases can assert on the details the default log leaves out.
fn boot_cmdline(case: &Case) -> String {
    if case.default_log || case.cmdline.contains("loglevel=") {
        case.cmdline.to_owned()
    } else {
        format!("loglevel=debug {}", case.cmdline)
    }
}

/// A case's command line as the bytes to bake into the image: `\xHH`
/// stands for the byte HH, so that a case can hold bytes that are not
/// UTF-8.
fn cmdline_bytes(cmdline: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::new();
    let mut rest = cmdline.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail
            .strip_prefix(b"x")
            .and_then(|t| t.get(..2))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(byte) if b == b'\\' => {
                out.push(byte);
                rest = &tail[3..];
            }
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// Where a kernel variant's ELF file is: `--kernel` for the default
/// build, else under `target/`.
pub fn kernel_path(cfg: &Config, kernel: Kernel) -> PathBuf {
    let built = |dir: PathBuf| {
        dir.join("x86_64-unknown-none")
            .join(kernel.profile())
            .join("baton")
    };
    match (kernel.feature(), kernel) {
        (Some(feature), _) => built(cfg.root.join("target/variants").join(feature)),
        (None, Kernel::Default) => cfg.kernel.clone(),
        (None, _) => built(cfg.root.join("target")),
    }
}

/// Builds a kernel variant (the default one is `make kernel`'s).
fn build_kernel(cfg: &Config, kernel: Kernel) -> Result<PathBuf, String> {
    let path = kernel_path(cfg, kernel);
    if kernel == Kernel::Default {
        if !path.is_file() {
            return Err(format!(
                "{} does not exist: run `make kernel` first",
                path.display()
            ));
        }
        return Ok(path);
    }
    let mut cargo = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&cfg.root)
        .args(["build", "-q", "-p", "kernel", "--profile", kernel.profile()])
        .args(["--target", "x86_64-unknown-none"]);
    if let Some(feature) = kernel.feature() {
        // Its own target directory: features would otherwise rebuild the
        // default kernel's dependencies each time.
        cargo
            .args(["--features", feature, "--target-dir"])
            .arg(cfg.root.join("target/variants").join(feature));
    }
    let status = cargo.status().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the {kernel:?} kernel failed"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_may_hold_any_byte() {
        use std::os::unix::ffi::OsStrExt;
        let bytes = cmdline_bytes("test caf\\xe9 poweroff \\x4 \\xzz \\x41");
        assert_eq!(bytes.as_bytes(), b"test caf\xe9 poweroff \\x4 \\xzz A");
        assert_eq!(cmdline_bytes("test").as_bytes(), b"test");
    }
}
