//! Links the kernel with the top-level linker script when building for the
//! bare-metal target (host builds, e.g. `cargo metadata`, are left alone).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&dir).join("../linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    // How large the symbol index must be depends on how much is inlined.
    let opt = std::env::var("OPT_LEVEL").expect("cargo sets OPT_LEVEL");
    println!("cargo:rustc-env=BATON_OPT_LEVEL={opt}");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // No build ID note: it would need its own segment.
        println!("cargo:rustc-link-arg-bins=--build-id=none");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
    }
}
