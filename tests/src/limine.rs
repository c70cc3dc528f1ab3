//! Limine releases as a test dimension: which are installed, which the
//! cases run against, and what each is expected to hand over.
//!
//! Every case runs against the release the image scripts find by default
//! (`iso/limine-dir.sh`: `$LIMINE_DIR`, `/usr/share/limine`, ...). The cases
//! marked `across_releases` also run against every other release installed:
//! those named in `LIMINE_DIRS` (colon-separated directories), or else
//! `/usr/share/limine` and every `/usr/share/limine-*` (where DEVELOPERS.md
//! installs them, as a distribution would). A release the project tests
//! ([`TESTED`]) that is not among them is reported as skipped, with the
//! reason.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The files an image needs from a release (as `iso/limine-dir.sh` checks).
pub const NEEDED: [&str; 4] = [
    "BOOTX64.EFI",
    "limine-uefi-cd.bin",
    "limine-bios-cd.bin",
    "limine-bios.sys",
];

/// The releases the project tests, one per base revision it hands over
/// under: 8.2 (revision 2), 9.6.7 (revision 3), 11.4.1 (revision 5).
pub const TESTED: [Version; 3] = [Version(8, 2, 0), Version(9, 6, 7), Version(11, 4, 1)];

/// The base revision baton asks for (`handoff::revision::REQUESTED`).
const REQUESTED_REVISION: u64 = 5;

/// A Limine version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `8.2.0`, `11.4` (patch 0) or `9.6.7-binary`'s leading part.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?;
        let mut parts = s.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().flatten()?;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Version(major, minor, patch))
    }

    /// The newest base revision the release speaks (Limine's ChangeLog):
    /// 8.0-8.2 revision 2, 8.3-10.1 revision 3, 10.2-10.7 revision 4,
    /// 10.8 and later 5 (and 6, which equals 5 on x86-64).
    fn newest_revision(self) -> u64 {
        match self {
            Version(8, 0..=2, _) => 2,
            Version(8, _, _) | Version(9, _, _) | Version(10, 0..=1, _) => 3,
            Version(10, 2..=7, _) => 4,
            _ => 5,
        }
    }

    /// The base revision this release hands over under when baton asks
    /// for its newest.
    pub fn revision(self) -> u64 {
        self.newest_revision().min(REQUESTED_REVISION)
    }

    /// Why baton cannot boot from this release, if it cannot.
    pub fn unsupported(self) -> Option<&'static str> {
        (self < Version(8, 0, 0)).then_some(
            "Limine 7 and older read limine.cfg, not the limine.conf syntax baton's images use",
        )
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// An installed Limine binary release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub dir: PathBuf,
    pub version: Version,
}

impl Release {
    /// The release in `dir`, or why there is none usable.
    pub fn open(dir: &Path) -> Result<Release, String> {
        let missing: Vec<&str> = NEEDED
            .iter()
            .copied()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(format!("{} lacks {}", dir.display(), missing.join(", ")));
        }
        let version = version_of(dir)
            .ok_or_else(|| format!("{}: cannot tell the Limine version", dir.display()))?;
        Ok(Release {
            dir: dir.to_path_buf(),
            version,
        })
    }
}

/// The release's version: `limine.c` says it (`#define LIMINE_VERSION`),
/// else the banner the UEFI executable carries (`Limine X.Y.Z`).
pub fn version_of(dir: &Path) -> Option<Version> {
    if let Ok(c) = fs::read_to_string(dir.join("limine.c"))
        && let Some(v) = c.lines().find_map(|l| {
            l.strip_prefix("#define LIMINE_VERSION \"")
                .and_then(|rest| rest.strip_suffix('"'))
                .and_then(Version::parse)
        })
    {
        return Some(v);
    }
    let efi = fs::read(dir.join("BOOTX64.EFI")).ok()?;
    banner_version(&efi)
}

/// The first `Limine X.Y[.Z]` in a binary.
fn banner_version(bytes: &[u8]) -> Option<Version> {
    const TAG: &[u8] = b"Limine ";
    let mut rest = bytes;
    while let Some(at) = rest.windows(TAG.len()).position(|w| w == TAG) {
        let tail = &rest[at + TAG.len()..];
        let len = tail
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        if let Some(v) = std::str::from_utf8(&tail[..len])
            .ok()
            .filter(|s| s.contains('.'))
            .and_then(Version::parse)
        {
            return Some(v);
        }
        rest = tail;
    }
    None
}

/// Where to look for releases: `LIMINE_DIRS` (colon-separated) when set
/// and not empty, else `/usr/share/limine` and every `/usr/share/limine-*`.
pub fn candidate_dirs(limine_dirs: Option<&str>, share: &Path) -> Vec<PathBuf> {
    if let Some(list) = limine_dirs.filter(|l| !l.trim().is_empty()) {
        return list
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    let mut dirs = vec![share.join("limine")];
    let mut versioned: Vec<PathBuf> = fs::read_dir(share)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("limine-"))
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    versioned.sort();
    dirs.extend(versioned);
    dirs
}

/// What discovery found: the releases other than the default one, and the
/// directories or tested releases it could not use, with the reason.
#[derive(Debug, Default)]
pub struct Found {
    /// Usable releases besides the default, oldest first.
    pub others: Vec<Release>,
    /// Candidate directories that are no usable release (only reported
    /// when named in `LIMINE_DIRS`; a partial `/usr/share/limine-*` is not
    /// the tests' business).
    pub unusable: Vec<String>,
    /// Tested releases not found, each with why.
    pub missing: Vec<(Version, String)>,
}

/// Sorts the candidates into the releases to run besides `default` (one
/// per version, the default's own version excluded), and reports the
/// tested releases found nowhere.
pub fn discover(default: &Release, candidates: &[PathBuf], explicit: bool) -> Found {
    let mut found = Found::default();
    for dir in candidates {
        match Release::open(dir) {
            Ok(r) if r.version == default.version => {}
            Ok(r) if found.others.iter().any(|o| o.version == r.version) => {}
            Ok(r) => match r.version.unsupported() {
                Some(why) => found.unusable.push(format!("{}: {why}", dir.display())),
                None => found.others.push(r),
            },
            Err(e) if explicit => found.unusable.push(e),
            Err(_) => {}
        }
    }
    found.others.sort_by_key(|r| r.version);
    for v in TESTED {
        if v != default.version && !found.others.iter().any(|r| r.version == v) {
            let why = if explicit {
                format!("Limine {v} is not among LIMINE_DIRS")
            } else {
                format!(
                    "Limine {v} is not installed (no /usr/share/limine-{v}; DEVELOPERS.md says how \
                     to install it)"
                )
            };
            found.missing.push((v, why));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("8.2.0"), Some(Version(8, 2, 0)));
        assert_eq!(Version::parse("11.4"), Some(Version(11, 4, 0)));
        assert_eq!(Version::parse("9.6.7-binary"), Some(Version(9, 6, 7)));
        assert_eq!(Version::parse("x"), None);
        assert_eq!(Version::parse("9"), None);
        assert!(Version(9, 6, 7) < Version(11, 4, 1));
        assert!(Version(8, 10, 0) > Version(8, 2, 0));
        assert_eq!(Version(11, 4, 1).to_string(), "11.4.1");
    }

    #[test]
    fn revision_per_release() {
        assert_eq!(Version(8, 2, 0).revision(), 2);
        assert_eq!(Version(8, 3, 0).revision(), 3);
        assert_eq!(Version(9, 6, 7).revision(), 3);
        assert_eq!(Version(10, 1, 9).revision(), 3);
        assert_eq!(Version(10, 2, 0).revision(), 4);
        assert_eq!(Version(10, 8, 0).revision(), 5);
        assert_eq!(Version(11, 4, 1).revision(), 5);
        // A release that speaks revision 6 still honours baton's 5.
        assert_eq!(Version(12, 0, 0).revision(), 5);
        assert!(Version(7, 13, 3).unsupported().is_some());
        assert!(Version(8, 0, 0).unsupported().is_none());
    }

    #[test]
    fn banner_in_a_binary() {
        let bin = b"\0\x01Limine Limine is\0Limine 9.6.7 (x86-64, UEFI)\0Limine 1.0";
        assert_eq!(banner_version(bin), Some(Version(9, 6, 7)));
        assert_eq!(banner_version(b"no banner"), None);
    }

    fn fake_release(root: &Path, name: &str, version: &str) -> PathBuf {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        for f in NEEDED {
            fs::write(dir.join(f), b"x").unwrap();
        }
        fs::write(
            dir.join("limine.c"),
            format!("/* */\n#define LIMINE_VERSION \"{version}\"\n"),
        )
        .unwrap();
        dir
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("boot-tests-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn discovery_under_share() {
        let share = scratch("share");
        let default = fake_release(&share, "limine", "8.2.0");
        fake_release(&share, "limine-11.4.1", "11.4.1");
        fake_release(&share, "limine-8.2.0", "8.2.0");
        fs::create_dir_all(share.join("limine-partial")).unwrap();
        let default = Release::open(&default).unwrap();
        let found = discover(&default, &candidate_dirs(None, &share), false);
        let versions: Vec<Version> = found.others.iter().map(|r| r.version).collect();
        // The default's version once, the partial directory ignored.
        assert_eq!(versions, vec![Version(11, 4, 1)]);
        assert!(found.unusable.is_empty());
        assert_eq!(found.missing.len(), 1);
        assert_eq!(found.missing[0].0, Version(9, 6, 7));
        assert!(found.missing[0].1.contains("not installed"));
        fs::remove_dir_all(&share).unwrap();
    }

    #[test]
    fn limine_dirs_name_the_releases() {
        let root = scratch("dirs");
        let a = fake_release(&root, "a", "9.6.7");
        let b = fake_release(&root, "b", "7.13.3");
        let default = Release::open(&fake_release(&root, "d", "8.2.0")).unwrap();
        let list = format!(
            "{}:{}:{}",
            a.display(),
            b.display(),
            root.join("nope").display()
        );
        let found = discover(&default, &candidate_dirs(Some(&list), &root), true);
        assert_eq!(found.others.len(), 1);
        assert_eq!(found.others[0].version, Version(9, 6, 7));
        // Too old, and not a release at all: both said.
        assert_eq!(found.unusable.len(), 2, "{:?}", found.unusable);
        assert_eq!(found.missing.len(), 1);
        assert!(found.missing[0].1.contains("LIMINE_DIRS"));
        fs::remove_dir_all(&root).unwrap();
    }
}
