//! A PostgreSQL database for the PgStore tests, with no manual setup: `DATABASE_URL` when it
//! is set, else a throwaway cluster started here from the machine's PostgreSQL binaries
//! (`initdb` + `pg_ctl` on a free port in a temporary directory, stopped and removed on
//! drop). Without either, a test is skipped with the reason printed — unless
//! `FULFILLKIT_REQUIRE_POSTGRES=1` (CI sets it), when it fails.
//!
//! `initdb` refuses to run as root: as root, the cluster is created and run as `nobody`.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the tests' database is.
pub struct TestDatabase {
    url: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    bindir: PathBuf,
    dir: PathBuf,
    run_as: Option<&'static str>,
}

impl TestDatabase {
    /// The database, or `None` (after printing why) when the test is to be skipped.
    ///
    /// # Panics
    ///
    /// Without a database when `FULFILLKIT_REQUIRE_POSTGRES=1`, or when a cluster fails to
    /// start.
    pub fn start(test: &str) -> Option<Self> {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            return Some(Self { url, cluster: None });
        }
        let Some(bindir) = find_bindir() else {
            let why = "no DATABASE_URL and no PostgreSQL binaries (initdb, pg_ctl: \
                       looked in `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH)";
            if std::env::var("FULFILLKIT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("{test}: PostgreSQL required (FULFILLKIT_REQUIRE_POSTGRES=1) but {why}");
            }
            eprintln!("{test}: SKIPPED: {why}; install PostgreSQL or set DATABASE_URL to run it");
            return None;
        };
        Some(Self::throwaway(bindir))
    }

    /// A connection URL (no password: the throwaway cluster trusts local connections).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is a cluster of the test's own (not `DATABASE_URL`).
    pub fn is_throwaway(&self) -> bool {
        self.cluster.is_some()
    }

    fn throwaway(bindir: PathBuf) -> Self {
        let run_as = is_root().then_some("nobody");
        let dir = std::env::temp_dir().join(format!(
            "fulfillkit-pg-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster's temporary directory");
        if let Some(user) = run_as {
            run(Command::new("chown").arg(user).arg(&dir), "chown");
        }
        let data = dir.join("data");
        let cluster = Cluster {
            bindir,
            dir: dir.clone(),
            run_as,
        };
        run(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
                .arg("--no-sync"),
            "initdb",
        );
        let port = free_port();
        // Throwaway data: no fsync. TCP on loopback only, no Unix socket (its default
        // directory may not be writable).
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= \
             -c fsync=off -c full_page_writes=off -c max_connections=200"
        );
        run(
            cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-o", &options, "-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(cluster),
        }
    }
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        };
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            let _ = cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(cluster.dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .status();
            let _ = std::fs::remove_dir_all(&cluster.dir);
        }
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn has_tools(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// The directory of `initdb` and `pg_ctl`.
fn find_bindir() -> Option<PathBuf> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_tools(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = versions.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|d| has_tools(d)))
}

/// A schema name of its own for one store in a shared database.
pub fn fresh_schema(label: &str) -> String {
    format!("{label}_{:08x}", fastrand::u32(..))
}
