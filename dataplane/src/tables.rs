//! [`SessionTables`]: reading sessions out of the fast path's slot array — by key (the home
//! slot `id & mask`, else `l2xdp_slots`), or all of them — with their profiles and counters.
//! The one reader: [`crate::XdpDataPlane`], the AF_XDP runtime's sync thread and
//! [`crate::stats`] all go through it.

use std::collections::HashMap as StdHashMap;

use aya::maps::{Array, HashMap, Map, MapData, MapError};
use l2xdp_ebpf::maps::{self, name};
use l2xdp_wire::datapath::SessionKey;

use crate::api::{DataPlaneError, SessionCounters};
use crate::session_map::{map_key, session_key};

pub(crate) fn sys(what: &str, e: impl std::fmt::Display) -> DataPlaneError {
    DataPlaneError::System(format!("{what}: {e}"))
}

pub(crate) fn not_found(e: &MapError) -> bool {
    matches!(e, MapError::KeyNotFound)
        || matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::ENOENT))
}

/// A session found in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Its slot in `l2xdp_sessions`.
    pub slot: u32,
    /// The slot's value.
    pub session: maps::Session,
}

impl Found {
    /// The map key of the session.
    pub fn key(&self) -> maps::SessionKey {
        found_key(&self.session)
    }

    /// Its counters.
    pub fn counters(&self) -> SessionCounters {
        SessionCounters {
            rx_packets: self.session.rx_packets,
            rx_bytes: self.session.rx_bytes,
            tx_packets: self.session.tx_packets,
            tx_bytes: self.session.tx_bytes,
        }
    }
}

/// The slot array, the overflow index and the profiles.
pub struct SessionTables {
    pub(crate) sessions: Array<MapData, maps::Session>,
    pub(crate) slots: HashMap<MapData, maps::SessionKey, u32>,
    pub(crate) profiles: Array<MapData, maps::Profile>,
    /// `max_entries` of the slot array - 1.
    pub(crate) mask: u32,
    /// The sessions the maps were sized for (`max_entries` of the overflow index).
    pub(crate) max_sessions: u32,
    /// The slot array's descriptor, for mapping it.
    fd: std::os::fd::OwnedFd,
}

impl SessionTables {
    /// Takes the three maps from `get` (pinned or of a loaded object).
    pub fn build(
        mut get: impl FnMut(&str) -> Result<Map, DataPlaneError>,
    ) -> Result<Self, DataPlaneError> {
        let map = get(name::SESSIONS)?;
        let fd = match &map {
            Map::Array(d) => {
                use std::os::fd::AsFd;
                d.fd()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| sys(name::SESSIONS, e))?
            }
            _ => return Err(sys(name::SESSIONS, "not an ARRAY")),
        };
        let sessions: Array<MapData, maps::Session> =
            map.try_into().map_err(|e| sys(name::SESSIONS, e))?;
        let n = sessions.len();
        if !n.is_power_of_two() {
            return Err(sys(
                name::SESSIONS,
                format!(
                    "{n} slots: not a power of two (a map from an older version: detach first)"
                ),
            ));
        }
        let slots_map = get(name::SLOTS)?;
        let max_sessions = match &slots_map {
            Map::HashMap(d) => d.info().map_err(|e| sys(name::SLOTS, e))?.max_entries(),
            _ => return Err(sys(name::SLOTS, "not a HASH")),
        };
        Ok(SessionTables {
            sessions,
            max_sessions,
            slots: slots_map.try_into().map_err(|e| sys(name::SLOTS, e))?,
            profiles: get(name::PROFILES)?
                .try_into()
                .map_err(|e| sys(name::PROFILES, e))?,
            mask: n - 1,
            fd,
        })
    }

    /// Opens the pinned maps.
    pub fn open(pin_dir: &std::path::Path) -> Result<Self, DataPlaneError> {
        Self::build(|n| {
            let path = pin_dir.join(n);
            let data = MapData::from_pin(&path).map_err(|e| sys(&path.display().to_string(), e))?;
            Map::from_map_data(data).map_err(|e| sys(n, e))
        })
    }

    /// Slots in the array.
    pub fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// The home slot of a key.
    pub fn home(&self, k: &maps::SessionKey) -> u32 {
        k.id & self.mask
    }

    /// Reads one slot.
    pub fn slot(&self, slot: u32) -> Result<maps::Session, DataPlaneError> {
        self.sessions
            .get(&slot, 0)
            .map_err(|e| sys(name::SESSIONS, e))
    }

    /// Reads one profile.
    pub fn profile(&self, i: u16) -> Result<maps::Profile, DataPlaneError> {
        self.profiles
            .get(&u32::from(i), 0)
            .map_err(|e| sys(name::PROFILES, e))
    }

    /// Finds a session by its map key.
    pub fn find(&self, k: &maps::SessionKey) -> Result<Option<Found>, DataPlaneError> {
        let holds = |s: &maps::Session| s.version == k.version && s.id == k.id;
        let home = self.home(k);
        let s = self.slot(home)?;
        if holds(&s) {
            return Ok(Some(Found {
                slot: home,
                session: s,
            }));
        }
        let slot = match self.slots.get(k, 0) {
            Ok(v) => v,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(sys(name::SLOTS, e)),
        };
        let s = self.slot(slot)?;
        Ok(holds(&s).then_some(Found { slot, session: s }))
    }

    /// Finds a session by its key.
    pub fn find_key(&self, key: &SessionKey) -> Result<Option<Found>, DataPlaneError> {
        self.find(&map_key(key))
    }

    /// Every occupied slot, in slot order: a scan of the array mapped read-only
    /// (`BPF_F_MMAPABLE`), or, where mapping fails, one read per slot.
    pub fn all(&self) -> Result<Vec<Found>, DataPlaneError> {
        let mut out = Vec::new();
        let mut push = |slot: u32, s: maps::Session| {
            if s.version != 0 && session_key(&found_key(&s)).is_some() {
                out.push(Found { slot, session: s });
            }
        };
        match Mapped::new(&self.fd, self.capacity()) {
            Some(m) => {
                for slot in 0..self.capacity() {
                    push(slot, m.get(slot));
                }
            }
            None => {
                for slot in 0..self.capacity() {
                    push(slot, self.slot(slot)?);
                }
            }
        }
        Ok(out)
    }

    /// The profiles the given sessions use, read once each.
    pub fn profiles_of(
        &self,
        found: &[Found],
    ) -> Result<StdHashMap<u16, maps::Profile>, DataPlaneError> {
        let mut out = StdHashMap::new();
        for f in found {
            if let std::collections::hash_map::Entry::Vacant(v) = out.entry(f.session.profile) {
                v.insert(self.profile(f.session.profile)?);
            }
        }
        Ok(out)
    }
}

fn found_key(s: &maps::Session) -> maps::SessionKey {
    maps::SessionKey {
        version: s.version,
        pad: [0; 3],
        id: s.id,
    }
}

/// The slot array mapped read-only.
struct Mapped {
    base: *const maps::Session,
    len: usize,
    n: u32,
}

impl Mapped {
    fn new(fd: &std::os::fd::OwnedFd, n: u32) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        let page = 4096usize;
        let len = (n as usize * std::mem::size_of::<maps::Session>()).div_ceil(page) * page;
        let fd = fd.as_raw_fd();
        // SAFETY: a shared read-only mapping of the map's value area (the kernel allows it for
        // a BPF_F_MMAPABLE array; any other answer is MAP_FAILED, handled); unmapped on drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Mapped {
            base: p as *const maps::Session,
            len,
            n,
        })
    }

    fn get(&self, slot: u32) -> maps::Session {
        debug_assert!(slot < self.n);
        // SAFETY: slot < n, the mapping covers n values; volatile: the programs write the
        // counters concurrently (a torn counter is read as it was at some instant per word).
        unsafe { std::ptr::read_volatile(self.base.add(slot.min(self.n - 1) as usize)) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}
