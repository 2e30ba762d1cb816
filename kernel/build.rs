//! Links the kernel with its own linker script, but only for the bare-metal
//! target: `cargo check` on the host must not see it. And makes sure the
//! user programs the image embeds (`src/programs.rs`) were built: their
//! directory comes from `cargo xtask` in PVOPS_USER_PROGRAMS.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rerun-if-changed={dir}/linker.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo:rustc-link-arg-bins=--gc-sections");
    }
    println!("cargo:rerun-if-env-changed=PVOPS_USER_PROGRAMS");
    match std::env::var_os("PVOPS_USER_PROGRAMS") {
        Some(programs) if std::path::Path::new(&programs).is_dir() => {}
        Some(programs) => {
            eprintln!("PVOPS_USER_PROGRAMS={} is not a directory", programs.to_string_lossy());
            eprintln!("build the kernel with cargo xtask: it builds the user programs first");
            std::process::exit(1);
        }
        None => {
            eprintln!("PVOPS_USER_PROGRAMS is not set: the kernel embeds the user programs");
            eprintln!("build the kernel with cargo xtask: it builds the user programs first");
            std::process::exit(1);
        }
    }
}
