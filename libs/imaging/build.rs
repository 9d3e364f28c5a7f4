//! Fails the build, with the one command that fixes it, when a tool or
//! library the pixel pipeline needs is missing. Without this, mozjpeg
//! builds without its SIMD code when `nasm` is missing (a cargo warning
//! only: JPEG then decodes several times slower) and libheif's cmake build
//! fails deep in its own output.

use std::process::Command;

const FIX: &str =
    "apt-get install build-essential nasm cmake pkg-config libde265-dev libdav1d-dev libaom-dev";

fn found(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let mut missing = Vec::new();
    for (program, what) in [
        ("nasm", "nasm (mozjpeg's SIMD code)"),
        ("cmake", "cmake (libheif's build)"),
        ("pkg-config", "pkg-config"),
    ] {
        if !found(program, &["--version"]) {
            missing.push(what.to_string());
        }
    }
    if missing.iter().all(|m| !m.starts_with("pkg-config")) {
        for (module, what) in [
            ("libde265", "libde265 (HEIC decoding)"),
            ("dav1d", "dav1d (AVIF decoding)"),
            ("aom", "libaom (AVIF encoding)"),
        ] {
            if !found("pkg-config", &["--exists", module]) {
                missing.push(what.to_string());
            }
        }
    }
    if !missing.is_empty() {
        panic!("\n\nmissing: {}\nfix: {FIX}\n", missing.join(", "));
    }
}
