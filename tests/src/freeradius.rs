//! A real FreeRADIUS for the RADIUS tests (Debian's `freeradius`, installed by
//! `scripts/setup.sh` when missing): its own configuration in a scratch directory (PAP, CHAP,
//! MS-CHAP with the `files` users, accounting to a detail file), loopback ports, started here
//! and stopped on drop.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use l2xdp_controlplane::aaa::ServerConfig;
use l2xdp_lab::scratch::Scratch;

pub const SECRET: &str = "l2xdp-radius-secret";

/// FreeRADIUS's binary, installed through the project's set-up script if missing (a test that
/// cannot run fails: no silent skip).
pub fn freeradius_binary() -> PathBuf {
    let bin = PathBuf::from("/usr/sbin/freeradius");
    if !bin.exists() {
        let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup.sh");
        let st = Command::new("bash")
            .arg(&setup)
            .status()
            .expect("run setup.sh");
        assert!(
            st.success(),
            "scripts/setup.sh failed installing freeradius"
        );
    }
    assert!(bin.exists(), "freeradius is not installed");
    bin
}

/// A FreeRADIUS on 127.0.0.1 with its own configuration; stopped and removed on drop.
pub struct FreeRadius {
    child: Child,
    /// Its authentication address.
    pub auth: SocketAddr,
    /// Its accounting address.
    pub acct: SocketAddr,
    dir: Scratch,
}

fn two_free_ports() -> (u16, u16) {
    let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    (
        a.local_addr().expect("addr").port(),
        b.local_addr().expect("addr").port(),
    )
}

impl FreeRadius {
    /// Starts one; `message_authenticator`: whether its answers carry one (FreeRADIUS 3.2.1
    /// adds it only when told to, in post-auth).
    /// Starts one with `users` as its users file (the `files` module's format); its answers
    /// carry a Message-Authenticator when `message_authenticator` (FreeRADIUS 3.2.1 adds it
    /// only when told to, in post-auth).
    pub fn start(tag: &str, message_authenticator: bool, users: &str) -> FreeRadius {
        let bin = freeradius_binary();
        let dir = Scratch::plain(&format!("radius-{tag}"));
        let d = &dir.dir;
        for sub in ["run", "log", "acct"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        std::fs::write(d.join("users"), users).expect("users");
        let (ap, cp) = two_free_ports();
        let ma = if message_authenticator {
            "update reply {\n\t\t\tMessage-Authenticator := 0x00\n\t\t}"
        } else {
            ""
        };
        let conf = format!(
            r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = {dir}/acct
name = freeradius
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}/run
db_dir = {dir}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = {dir}/run/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {{
	destination = stderr
	auth = yes
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}}
thread pool {{
	start_servers = 2
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 3
	max_requests_per_server = 0
}}
modules {{
	pap {{
		normalise = yes
	}}
	chap {{
	}}
	mschap {{
	}}
	files {{
		filename = {dir}/users
	}}
	detail {{
		filename = {dir}/acct/detail
		permissions = 0600
	}}
}}
client loopback {{
	ipaddr = 127.0.0.1
	secret = {SECRET}
	require_message_authenticator = yes
}}
server default {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {ap}
	}}
	listen {{
		type = acct
		ipaddr = 127.0.0.1
		port = {cp}
	}}
	authorize {{
		chap
		mschap
		files
		pap
	}}
	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
		Auth-Type MS-CHAP {{
			mschap
		}}
	}}
	preacct {{
	}}
	accounting {{
		detail
	}}
	post-auth {{
		{ma}
		Post-Auth-Type REJECT {{
			update {{
				&reply: !* ANY
			}}
			update reply {{
				Reply-Message := "Access denied"
			}}
			{ma}
		}}
	}}
}}
"#,
            dir = d.display(),
        );
        std::fs::write(d.join("radiusd.conf"), conf).expect("conf");
        let log = std::fs::File::create(d.join("freeradius.log")).expect("log");
        let child = Command::new(bin)
            .args(["-f", "-n", "radiusd", "-l", "stdout", "-d"])
            .arg(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start freeradius");
        let mut fr = FreeRadius {
            child,
            auth: (Ipv4Addr::LOCALHOST, ap).into(),
            acct: (Ipv4Addr::LOCALHOST, cp).into(),
            dir,
        };
        // Bounds a hung start only.
        let limit = Instant::now() + Duration::from_secs(30);
        loop {
            let text =
                std::fs::read_to_string(fr.dir.dir.join("freeradius.log")).unwrap_or_default();
            if text.contains("Ready to process requests") {
                break;
            }
            if let Ok(Some(st)) = fr.child.try_wait() {
                panic!("freeradius exited ({st}) at start:\n{text}");
            }
            assert!(Instant::now() < limit, "freeradius did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
        fr
    }

    /// This server in the client's terms, at `priority`.
    pub fn server(&self, priority: u32) -> ServerConfig {
        ServerConfig {
            auth: self.auth,
            acct: self.acct,
            secret: SECRET.as_bytes().to_vec(),
            priority,
        }
    }

    /// Its accounting detail file.
    pub fn detail(&self) -> String {
        std::fs::read_to_string(self.dir.dir.join("acct/detail")).unwrap_or_default()
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
