//! A throwaway PostgreSQL cluster for one test: `initdb -A trust` in a fresh directory, started
//! on 127.0.0.1 on a free port (and a Unix socket in the same directory), stopped and deleted
//! when the [`Cluster`] drops, also when the test panics. As root, `initdb` and `pg_ctl` run as
//! the `postgres` user (PostgreSQL refuses to run as root).
//!
//! Without PostgreSQL a test is skipped loudly; with `CI` set (to anything but `0` or `false`)
//! it fails instead.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The directory of `initdb` and `pg_ctl`: `OLMO_PG_BINDIR`, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin`, else `PATH`.
fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("OLMO_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dirs| {
            dirs.filter_map(Result::ok)
                .filter_map(|d| Some((d.file_name().to_str()?.parse::<u32>().ok()?, d.path())))
                .filter(|(_, path)| path.join("bin/initdb").exists())
                .max()
                .map(|(_, path)| path.join("bin"))
        });
    debian.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    })
}

/// Runs a PostgreSQL tool of `bin` (as the `postgres` user when `as_postgres`) in `dir`.
fn run_tool(
    bin: &Path,
    as_postgres: bool,
    dir: &Path,
    tool: &str,
    args: &[&std::ffi::OsStr],
) -> Output {
    let program = bin.join(tool);
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    command
        .args(args)
        // The server's own locale, whatever the test machine's.
        .env("LC_ALL", "C")
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// A running cluster, or `None` (and a note on stderr) when PostgreSQL is not installed and
    /// CI is not set.
    pub fn start_or_skip() -> Option<Self> {
        Self::start(false)
    }

    /// As [`Cluster::start_or_skip`], serving TLS too with a certificate for 127.0.0.1 from a
    /// test CA ([`Cluster::ca_pem`]).
    pub fn start_with_tls_or_skip() -> Option<Self> {
        Self::start(true)
    }

    fn start(tls: bool) -> Option<Self> {
        let Some(bin) = find_bin() else {
            let message = "PostgreSQL is not installed: run .ci/setup-postgres.sh";
            let ci = std::env::var("CI").unwrap_or_default();
            if !matches!(ci.as_str(), "" | "0" | "false") {
                panic!("{message} (CI is set: the PostgreSQL tests must run)");
            }
            // Straight to stderr: the test harness captures `eprintln!` of a passing test.
            let _ = writeln!(std::io::stderr(), "SKIPPED a PostgreSQL test: {message}");
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("olmo-pg-")
            .tempdir()
            .unwrap();
        let mut cluster = Self {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            let chown = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown of the cluster directory failed");
        }
        let data = cluster.data();
        let ssl = if tls {
            cluster.make_certificates();
            let dir = cluster.dir.path().display();
            format!(" -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key")
        } else {
            String::new()
        };
        cluster.run(
            "initdb",
            &[
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--no-sync".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
            ],
        );
        // A port taken between choosing it and the server binding it: choose again.
        for _ in 0..5 {
            cluster.port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {}{ssl}",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("server.log");
            let started = cluster.try_run(
                "pg_ctl",
                &[
                    "-w".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-o".as_ref(),
                    options.as_ref(),
                    "start".as_ref(),
                ],
            );
            if started.status.success() {
                return Some(cluster);
            }
        }
        let log =
            std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
        panic!("PostgreSQL did not start: {log}");
    }

    /// A test CA and a server certificate for 127.0.0.1 it signed, in the cluster directory.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let steps: [&[&str]; 3] = [
            &[
                &["req", "-x509"],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=olmo test CA",
                ],
            ]
            .concat(),
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        ];
        for args in steps {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // The server refuses a key others can read.
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        if self.as_postgres {
            let chown = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&key)
                .status()
                .unwrap();
            assert!(chown.success());
        }
    }

    /// The test CA's certificate (PEM), from a cluster started with TLS.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).unwrap()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn try_run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Output {
        run_tool(&self.bin, self.as_postgres, self.dir.path(), tool, args)
    }

    /// `sql` run through `psql` each time the closure is called (from any thread, while the
    /// cluster runs): a fault a test injects from inside a backend.
    pub fn statement(&self, sql: &str) -> impl Fn() + Send + Sync + 'static {
        let (bin, as_postgres) = (self.bin.clone(), self.as_postgres);
        let dir = self.dir.path().to_owned();
        let (port, sql) = (self.port.to_string(), sql.to_owned());
        move || {
            let args = [
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-tAc",
                &sql,
            ];
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            let output = run_tool(&bin, as_postgres, &dir, "psql", &args);
            assert!(output.status.success(), "psql failed");
        }
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) {
        let output = self.try_run(tool, args);
        assert!(
            output.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A libpq connection string for the `postgres` database over TCP.
    pub fn connection_string(&self) -> String {
        self.database("postgres")
    }

    /// The connection string of database `name`.
    pub fn database(&self, name: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={name} connect_timeout=10",
            self.port
        )
    }

    /// Creates database `name` and gives its connection string.
    pub fn create_database(&self, name: &str) -> String {
        let port = self.port.to_string();
        self.run(
            "createdb",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                name.as_ref(),
            ],
        );
        self.database(name)
    }

    /// The one value `sql` gives, through `psql`.
    pub fn query_one(&self, sql: &str) -> String {
        self.query_in("postgres", sql)
    }

    /// The one value `sql` gives in database `name`, through `psql`.
    pub fn query_in(&self, name: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let output = self.try_run(
            "psql",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-d".as_ref(),
                name.as_ref(),
                "-tAc".as_ref(),
                sql.as_ref(),
            ],
        );
        assert!(
            output.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Waits until no olmo connection is open: the server has finished (committed or rolled
    /// back) whatever a killed client had sent it.
    pub fn wait_until_olmo_disconnected(&self) {
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'olmo'";
        let started = std::time::Instant::now();
        while self.query_one(sql) != "0" {
            assert!(
                started.elapsed().as_secs() < 20,
                "a killed client's session lingers"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `pg_dump` of the `postgres` database, as text: what a backup holds.
    pub fn dump(&self) -> String {
        let port = self.port.to_string();
        let output = self.try_run(
            "pg_dump",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "postgres".as_ref(),
            ],
        );
        assert!(output.status.success(), "pg_dump failed");
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        // Immediate: a test's leftover connections do not hold the stop up.
        let _ = self.try_run(
            "pg_ctl",
            &[
                "-w".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
    }
}
