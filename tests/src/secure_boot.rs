//! What the Secure Boot cases need: Debian's snakeoil firmware and test
//! key, sbsigntool, and the images' tampered variants.
//!
//! Debian's `ovmf` package ships OVMF with Secure Boot enforced and the
//! snakeoil certificate enrolled as PK, KEK and db, with its key pair (for
//! testing only; its passphrase is in the package's README.Debian). The
//! tests sign with it; the build never uses it unless told to.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cases::Signing;
use crate::qemu;

/// The firmware: Secure Boot code (needs SMM) and the variable store with
/// the snakeoil keys enrolled.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd";
/// The snakeoil key pair (the key is encrypted).
pub const KEY: &str = "/usr/share/ovmf/PkKek-1-snakeoil.key";
pub const CERT: &str = "/usr/share/ovmf/PkKek-1-snakeoil.pem";
const PASSPHRASE: &str = "pass:snakeoil";

/// Where the EFI system partition starts in `iso/mkhdd.sh`'s image, in
/// mtools' `image@@offset` syntax.
const ESP: &str = "@@1M";

/// Everything a Secure Boot case needs, checked.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The key, decrypted into the build directory (sbsign would ask for
    /// the passphrase on the terminal).
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// Checks the tools and files and decrypts the key into `scratch`, or
/// says what is missing.
pub fn kit(scratch: &Path) -> Result<Kit, String> {
    let mut missing: Vec<String> = ["sbsign", "sbattach", "openssl", "b2sum", "mcopy"]
        .iter()
        .filter(|t| qemu::on_path(t).is_none())
        .map(|t| format!("`{t}`"))
        .collect();
    missing.extend(
        [OVMF_CODE, OVMF_VARS, KEY, CERT]
            .iter()
            .filter(|f| !Path::new(f).is_file())
            .map(|f| f.to_string()),
    );
    if !missing.is_empty() {
        return Err(format!(
            "no {} (Debian's sbsigntool and ovmf packages)",
            missing.join(", ")
        ));
    }
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let key = scratch.join("snakeoil.key");
    let out = Command::new("openssl")
        .args(["pkey", "-in", KEY, "-passin", PASSPHRASE, "-out"])
        .arg(&key)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl cannot decrypt {KEY}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Kit {
        key,
        cert: CERT.into(),
    })
}

/// A change made to a file taken out of an image.
type Change = fn(&Path) -> Result<(), String>;

/// Turns a signed image into the variant `signing` asks for.
pub fn tamper(image: &Path, signing: Signing, scratch: &Path) -> Result<(), String> {
    let (inside, change): (&str, Change) = match signing {
        Signing::Off | Signing::Signed => return Ok(()),
        Signing::TamperedKernel => ("::/boot/baton", append_byte),
        Signing::TamperedConfig => ("::/boot/limine/limine.conf", append_comment),
        Signing::UnsignedLimine => ("::/EFI/BOOT/BOOTX64.EFI", remove_signature),
    };
    let img = format!("{}{ESP}", image.display());
    let file = scratch.join(format!(
        "{}.tamper",
        image.file_name().unwrap_or_default().to_string_lossy()
    ));
    run(Command::new("mcopy")
        .args(["-o", "-i", &img, inside])
        .arg(&file))?;
    change(&file)?;
    run(Command::new("mcopy")
        .args(["-o", "-i", &img])
        .arg(&file)
        .arg(inside))?;
    let _ = std::fs::remove_file(&file);
    Ok(())
}

fn append_byte(file: &Path) -> Result<(), String> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(b"\0"))
        .map_err(|e| format!("{}: {e}", file.display()))
}

fn append_comment(file: &Path) -> Result<(), String> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(b"# tampered\n"))
        .map_err(|e| format!("{}: {e}", file.display()))
}

fn remove_signature(file: &Path) -> Result<(), String> {
    run(Command::new("sbattach").arg("--remove").arg(file))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
