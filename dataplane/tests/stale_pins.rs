//! Pins left by another version of l2xdp (issue 16 changed `l2xdp_config` and the verdict
//! counters): `loader::load` over a pin directory whose `l2xdp_config` has the older layout
//! (56-byte values) refuses with one line naming the map and the remedy (`detach` first), instead
//! of a verifier message about an offset; the pinned map is left as it was. Over a directory
//! pinned by this build, it loads.
//!
//! Needs root (`l2xdp_lab::require_root`).

mod common;

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

use common::skip_unless_root;
use l2xdp_dataplane::loader;
use l2xdp_ebpf::maps::name;
use l2xdp_lab::topology::Pins;

/// `BPF_MAP_CREATE` of an ARRAY (`key_size` 4) and `BPF_OBJ_PIN` at `path`.
fn pin_array(path: &std::path::Path, value_size: u32, max_entries: u32) {
    #[repr(C)]
    #[derive(Default)]
    struct Create {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Pin {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let attr = Create {
        map_type: 2, // BPF_MAP_TYPE_ARRAY
        key_size: 4,
        value_size,
        max_entries,
        ..Create::default()
    };
    // SAFETY: BPF_MAP_CREATE (0) reads `attr` (its size given).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0,
            &attr as *const Create,
            std::mem::size_of::<Create>(),
        )
    };
    assert!(
        fd >= 0,
        "BPF_MAP_CREATE: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a descriptor the kernel just returned, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let p = CString::new(path.to_str().expect("utf-8")).expect("path");
    let attr = Pin {
        pathname: p.as_ptr() as u64,
        bpf_fd: std::os::fd::AsRawFd::as_raw_fd(&fd) as u32,
        file_flags: 0,
    };
    // SAFETY: BPF_OBJ_PIN (6) reads `attr` and the NUL-terminated path, alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            6,
            &attr as *const Pin,
            std::mem::size_of::<Pin>(),
        )
    };
    assert_eq!(r, 0, "BPF_OBJ_PIN: {}", std::io::Error::last_os_error());
}

#[test]
fn pins_of_another_layout_are_refused_by_name() {
    let test = "pins_of_another_layout_are_refused_by_name";
    if skip_unless_root(test) {
        return;
    }
    let pins = Pins::under_sys_fs_bpf("i16-dpdefects-stale");
    std::fs::create_dir_all(pins.path()).expect("pin dir");
    let config = pins.path().join(name::CONFIG);
    pin_array(&config, 56, 1);
    let err = match loader::load(Some(pins.path())) {
        Ok(_) => panic!("loaded over a 56-byte l2xdp_config"),
        Err(e) => e.to_string(),
    };
    eprintln!("{err}");
    assert!(
        err.contains("l2xdp_config was pinned by another version of l2xdp")
            && err.contains("values of 56 bytes")
            && err.contains("l2xdp-dataplane detach"),
        "{err}"
    );
    assert!(!err.contains("verifier"), "{err}");
    assert!(config.exists(), "the pinned map is left as it was");
    // This build's own pins load.
    std::fs::remove_file(&config).expect("unpin");
    loader::load(Some(pins.path())).expect("load over fresh pins");
    loader::load(Some(pins.path())).expect("and again over its own pins");
}

/// Issue 14's shared v3 profiles moved the transmit cookie from `l2xdp_profiles` into the
/// session's slot (the slot keeps its 64 bytes, the profile went from 212 to 206): pins of the
/// older layout are refused by the profile map's name, never read with the new meaning.
#[test]
fn profiles_of_the_per_session_v3_layout_are_refused() {
    let test = "profiles_of_the_per_session_v3_layout_are_refused";
    if skip_unless_root(test) {
        return;
    }
    let pins = Pins::under_sys_fs_bpf("v3encap-stale");
    std::fs::create_dir_all(pins.path()).expect("pin dir");
    let profiles = pins.path().join(name::PROFILES);
    pin_array(&profiles, 212, 1024);
    let err = match loader::load(Some(pins.path())) {
        Ok(_) => panic!("loaded over a 212-byte l2xdp_profiles"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("l2xdp_profiles was pinned by another version of l2xdp")
            && err.contains("values of 212 bytes")
            && err.contains("this one has 206")
            && err.contains("l2xdp-dataplane detach"),
        "{err}"
    );
    assert!(profiles.exists(), "the pinned map is left as it was");
}
