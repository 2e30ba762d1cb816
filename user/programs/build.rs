//! Links each program at 0x08048000 with this crate's linker script, but
//! only for the bare-metal target: the library is also built for the host.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rerun-if-changed={dir}/linker.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo:rustc-link-arg-bins=--gc-sections");
        // The kernel embeds these files byte for byte, and the release
        // profile keeps debug information (for the kernel's sake), which
        // would be most of each file.
        println!("cargo:rustc-link-arg-bins=--strip-debug");
    }
}
