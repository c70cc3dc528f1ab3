//! The QEMU command line a case boots with: the machine, its firmware and
//! the medium holding the image.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cases::{Case, Firmware, Media};
use crate::config::{self, Config};
use crate::secure_boot;

/// The firmware a case boots: where the distribution ships only OVMF's
/// split images, the `-bios` cases run on pflash OVMF instead.
fn firmware(cfg: &Config, case: &Case) -> Firmware {
    match (case.firmware, &cfg.ovmf) {
        (Firmware::Ovmf, None) => Firmware::OvmfPflash,
        (f, _) => f,
    }
}

/// The variable store a case's pflash firmware starts from, if any.
pub fn vars_template(cfg: &Config, case: &Case) -> Option<PathBuf> {
    match firmware(cfg, case) {
        Firmware::OvmfPflash => config::pflash_images().map(|(_, vars)| vars),
        Firmware::SecureBootOvmf => Some(secure_boot::OVMF_VARS.into()),
        Firmware::Ovmf | Firmware::SeaBios => None,
    }
}

/// QEMU's arguments for a case booting `image`, its pflash firmware (if
/// any) keeping its variables in `vars`.
pub fn qemu_args(cfg: &Config, case: &Case, image: &Path, vars: &Path) -> Vec<String> {
    let mut a = machine_args(cfg, case);
    a.extend(firmware_args(cfg, case, vars));
    a.extend(medium_args(case, image));
    a
}

/// The machine: its type, accelerator, memory, exit device and CPUs.
fn machine_args(cfg: &Config, case: &Case) -> Vec<String> {
    let machine = match case.firmware {
        // The Secure Boot firmware refuses to run without SMM.
        Firmware::SecureBootOvmf => format!("{},smm=on", case.machine),
        _ => case.machine.to_owned(),
    };
    let mut a: Vec<String> = vec!["-M".into(), machine];
    a.extend(
        ["-accel", "tcg", "-m", case.memory]
            .iter()
            .map(|s| s.to_string()),
    );
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
    a
}

/// The firmware: OVMF as `-bios`, or as pflash on `vars`; none for
/// SeaBIOS, QEMU's default.
fn firmware_args(cfg: &Config, case: &Case, vars: &Path) -> Vec<String> {
    let pflash = |code: &Path| {
        vec![
            "-drive".into(),
            format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ),
            "-drive".into(),
            format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
        ]
    };
    match firmware(cfg, case) {
        Firmware::Ovmf => {
            let ovmf = cfg.ovmf.as_ref().expect("firmware() checked");
            vec!["-bios".into(), ovmf.display().to_string()]
        }
        Firmware::OvmfPflash => {
            let (code, _) = config::pflash_images().expect("checked by unmet() or at start");
            pflash(&code)
        }
        Firmware::SecureBootOvmf => {
            // Only code running in SMM may write the variable store.
            let mut a = vec![
                "-global".into(),
                "driver=cfi.pflash01,property=secure,value=on".into(),
            ];
            a.extend(pflash(Path::new(secure_boot::OVMF_CODE)));
            a
        }
        Firmware::SeaBios => Vec::new(),
    }
}

/// The medium holding `image`: a CD, an IDE disk or a USB stick.
fn medium_args(case: &Case, image: &Path) -> Vec<String> {
    let image = image.display().to_string();
    match case.media {
        Media::Cdrom => vec!["-cdrom".into(), image],
        Media::Disk => vec![
            "-drive".into(),
            // snapshot: cases share images and may run at once.
            format!("if=ide,index=0,format=raw,media=disk,snapshot=on,file={image}"),
        ],
        Media::UsbDisk => vec![
            "-device".into(),
            "qemu-xhci,id=xhci".into(),
            "-drive".into(),
            format!("if=none,id=stick,format=raw,snapshot=on,file={image}"),
            "-device".into(),
            "usb-storage,bus=xhci.0,drive=stick".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases;

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
}
