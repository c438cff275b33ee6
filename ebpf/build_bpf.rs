// The build-script half every crate with XDP programs in C shares (`ebpf`, `lab`, `bench`:
// their `build.rs` `include!` this file): compile `bpf/<name>.bpf.c` of the calling crate with
// `clang -target bpf` into OUT_DIR/<name>.o, which the crate embeds with `include_bytes!`, so
// nothing is read at run time.

/// Compiles `bpf/<name>.bpf.c` of the crate being built for every name, with `include` (a
/// directory relative to the crate) on the include path.
fn compile_bpf(names: &[&str], include: &str) {
    use std::path::PathBuf;
    use std::process::Command;

    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed={include}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // Debian/Ubuntu keep asm/types.h under the multiarch directory.
    let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    for name in names {
        let src = dir.join("bpf").join(format!("{name}.bpf.c"));
        let obj = out.join(format!("{name}.o"));
        let status = Command::new(&clang)
            .args([
                "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-Wall", "-Werror",
            ])
            .arg("-I")
            .arg(dir.join(include))
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
