//! Compiles the XDP programs (C) with `clang -target bpf`; the objects are embedded in the
//! crate (`include_bytes!` of OUT_DIR), so nothing is read at run time.

use std::path::PathBuf;
use std::process::Command;

const OBJECTS: &[&str] = &["l2xdp", "l2xdp_util", "l2xdp_bench"];

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed=include");
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // Debian/Ubuntu keep asm/types.h under the multiarch directory.
    let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    for name in OBJECTS {
        let src = dir.join("bpf").join(format!("{name}.bpf.c"));
        let obj = out.join(format!("{name}.o"));
        let status = Command::new(&clang)
            .args([
                "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-Wall", "-Werror",
            ])
            .arg("-I")
            .arg(dir.join("include"))
            .arg("-I")
            .arg(&multiarch)
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("clang failed ({s}) compiling {}", src.display()),
            Err(e) => panic!(
                "cannot run `{clang}` ({e}): the XDP programs are C compiled with clang -target bpf; \
                 install clang, llvm and libbpf-dev (scripts/setup.sh) or set CLANG=/path/to/clang"
            ),
        }
    }
}
