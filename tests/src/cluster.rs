//! A PostgreSQL cluster of a test's own, for tests that freeze, restart or stop their
//! server: never the shared one at `TEST_DATABASE_URL`, which other tests use meanwhile.
//!
//! [`Cluster::start`] runs `initdb` into a temporary folder and starts a server on a
//! free port of 127.0.0.1, its Unix socket in that folder too. Dropping the cluster
//! wakes it if frozen, stops it and removes the folder, also when the test fails. As
//! root the server runs as the `postgres` user (it refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the server's programs are, unless `PG_BIN` says otherwise.
const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running throwaway PostgreSQL cluster, stopped and removed when dropped.
#[derive(Debug)]
pub struct Cluster {
    folder: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// Run the server's programs as `postgres` (this process is root).
    as_postgres: bool,
    password: Option<String>,
}

impl Cluster {
    /// A new cluster, started, whose `postgres` superuser connects without a password.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A new cluster, started, whose `postgres` superuser needs `password` over TCP
    /// (SCRAM), for tests of authentication.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned()))
    }

    fn start_with(password: Option<String>) -> Self {
        let bin =
            std::env::var_os("PG_BIN").map_or_else(|| PathBuf::from(DEFAULT_PG_BIN), PathBuf::from);
        let folder = tempfile::Builder::new()
            .prefix("throwaway-pg-")
            .tempdir()
            .expect("a temporary folder for the cluster");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(folder.path()));
        }
        let port = free_port();
        let cluster = Self {
            folder,
            port,
            bin,
            as_postgres,
            password,
        };
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", "postgres", "-E", "UTF8", "--no-sync"]);
        match &cluster.password {
            Some(password) => {
                let file = cluster.folder.path().join("password");
                std::fs::write(&file, password).expect("writing the password file");
                if cluster.as_postgres {
                    run(Command::new("chown").arg("postgres:").arg(&file));
                }
                initdb
                    .args([
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "--pwfile",
                    ])
                    .arg(&file);
            }
            None => {
                initdb.arg("--auth=trust");
            }
        }
        run(&mut initdb);
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        cluster
    }

    /// The URL of database `postgres` on this cluster, as its superuser (with the
    /// password, if the cluster has one).
    pub fn url(&self) -> String {
        let user = match &self.password {
            Some(password) => format!("postgres:{password}"),
            None => "postgres".to_owned(),
        };
        format!("postgres://{user}@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops every process of the server (SIGSTOP), as a server that hangs or a host
    /// that stopped answering: connections stay open, nothing answers. Until [`thaw`].
    ///
    /// [`thaw`]: Cluster::thaw
    pub fn freeze(&self) {
        // The postmaster first, so that it starts no process the signal would miss.
        let postmaster = self.postmaster_pid();
        signal("STOP", &[postmaster]);
        signal("STOP", &children_of(postmaster));
    }

    /// Wakes every process of the server stopped by [`freeze`](Cluster::freeze).
    pub fn thaw(&self) {
        let postmaster = self.postmaster_pid();
        let mut all = children_of(postmaster);
        all.push(postmaster);
        signal("CONT", &all);
    }

    /// Restarts the server (a fast shutdown: every session is ended), as an operator
    /// or a crash-restarting supervisor would; connections made before are broken.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "60"]);
    }

    fn data(&self) -> PathBuf {
        self.folder.path().join("data")
    }

    fn postmaster_pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .expect("the cluster's postmaster.pid");
        text.lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .expect("a process id in postmaster.pid")
    }

    fn pg_ctl(&self, args: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 \
             -c shared_buffers=16MB",
            self.port,
            self.folder.path().display()
        );
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.folder.path().join("server.log"))
            .args(["-o", &options])
            .args(args);
        run(&mut pg_ctl);
    }

    /// One of the server's programs, run as `postgres` when this process is root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.data().join("postmaster.pid").exists() {
            return;
        }
        self.thaw();
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data())
            .args(["stop", "-m", "immediate", "-w", "-t", "60"]);
        let _ = pg_ctl.output();
    }
}

/// Runs `command`, failing the test with its output when it fails.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sends `SIG<name>` to the processes `pids` (none: nothing to do).
fn signal(name: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let mut kill = Command::new("kill");
    kill.arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string));
    // A process may have ended meanwhile: that is no failure.
    let _ = kill.output();
}

/// The processes whose parent is `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// The parent of process `pid`, from `/proc/<pid>/stat` (the field after the name,
/// which is in parentheses and may hold spaces).
fn parent_of(pid: u32) -> Option<u32> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// A TCP port of 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Whether this process runs as root, which PostgreSQL's programs refuse.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next().map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
