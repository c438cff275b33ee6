//! A run's scratch directory with a bpffs of its own, for a fast path whose user runs under
//! `ip netns exec` (`l2xdpd`, `l2xdp-dataplane`): `ip netns exec` mounts a fresh /sys for the
//! command, which hides /sys/fs/bpf, but a bpffs mounted elsewhere is inherited. Without the
//! bpffs ([`Scratch::plain`], no root needed), a temporary directory removed on drop.

use std::path::PathBuf;
use std::process::Command;

use crate::sh;
use l2xdp_dataplane::loader;

/// `<tmp>/l2xdp-<tag>-<pid>` with a `bpf` file system mounted at `bpf/` and the pins in
/// `bpf/pins`. On drop (on failure too): the pinned links are removed (detaching the
/// programs), then the pinned maps, the mount, and the directory.
#[derive(Debug)]
pub struct Scratch {
    /// The directory (configuration files, sockets, state go here too).
    pub dir: PathBuf,
    /// The pin directory, inside the private bpffs (created by whoever pins first).
    pub pins: PathBuf,
    bpffs: PathBuf,
    mounted: bool,
}

impl Scratch {
    /// Creates the directory and mounts the bpffs (one per tag and process).
    pub fn new(tag: &str) -> Scratch {
        let mut s = Scratch::plain(tag);
        std::fs::create_dir_all(&s.bpffs).expect("scratch bpffs directory");
        let b = s.bpffs.to_str().expect("utf-8 path");
        sh(&["mount", "-t", "bpf", "bpf", b]);
        s.mounted = true;
        s
    }

    /// The directory alone (one per tag and process): nothing is mounted and nothing can be
    /// pinned in it.
    pub fn plain(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("l2xdp-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let bpffs = dir.join("bpf");
        Scratch {
            pins: bpffs.join("pins"),
            dir,
            bpffs,
            mounted: false,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = loader::detach(&self.pins) {
                eprintln!("cleanup of {}: {e}", self.pins.display());
            }
            let _ = Command::new("umount").arg(&self.bpffs).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
