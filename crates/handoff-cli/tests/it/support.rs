//! Running the real binary: a server on a free loopback port, CLI
//! invocations against it, and a clean SIGTERM stop.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_handoff");

/// How long a server may take to answer /healthz after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `handoff` command with no `HANDOFF_*` variable inherited from the test's environment.
pub(crate) fn handoff_command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HANDOFF_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

/// What one CLI invocation did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts success.
    #[track_caller]
    pub(crate) fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Standard output as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `cmd` to completion.
pub(crate) fn run(mut cmd: Command) -> Run {
    let out = cmd.stdin(Stdio::null()).output().expect("run handoff");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A `handoff serve` child process.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The working directory of the server and of CLI runs.
    pub(crate) cwd: PathBuf,
    /// The data directory.
    pub(crate) data_dir: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts `handoff serve ARGS --listen 127.0.0.1:<free port>` in `cwd`
    /// and waits for /healthz. `data_dir` is where the server keeps its data
    /// (given in `args` or the default `cwd/handoff-data`).
    pub(crate) fn start(cwd: &Path, data_dir: &Path, args: &[&str]) -> Self {
        Self::start_with(cwd, data_dir, args, "http")
    }

    /// Like [`Server::start`] for a server given `--tls-cert`/`--tls-key` in
    /// `args`; waits for its "listening on https://" log line instead of /healthz.
    pub(crate) fn start_https(cwd: &Path, data_dir: &Path, args: &[&str]) -> Self {
        Self::start_with(cwd, data_dir, args, "https")
    }

    fn start_with(cwd: &Path, data_dir: &Path, args: &[&str], scheme: &str) -> Self {
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let log = cwd.join(format!("server-{port}.log"));
            let file = File::create(&log).expect("create server log");
            let mut cmd = handoff_command(cwd);
            cmd.arg("serve")
                .args(args)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("clone log handle"))
                .stderr(file);
            let child = cmd.spawn().expect("spawn handoff serve");
            let mut server = Self {
                child,
                addr: format!("{scheme}://127.0.0.1:{port}"),
                cwd: cwd.to_owned(),
                data_dir: data_dir.to_owned(),
                log,
            };
            if server.wait_ready(port, scheme) {
                return server;
            }
            last_log = server.log();
            // Lost the port race: try another one. Anything else is a failure.
            if !last_log.contains("cannot listen") {
                panic!("server did not start (attempt {attempt}):\n{last_log}");
            }
        }
        panic!("server did not start after 5 attempts:\n{last_log}");
    }

    /// Polls /healthz until it answers 200 (for https: until the server logs
    /// that it listens), the process exits or time runs out.
    fn wait_ready(&mut self, port: u16, scheme: &str) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let ready = match scheme {
                "http" => healthz(port),
                _ => self.log().contains(&format!("listening on {scheme}://")),
            };
            if ready {
                return true;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        false
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The bootstrap admin token.
    pub(crate) fn admin_token(&self) -> String {
        fs::read_to_string(self.data_dir.join("admin-token"))
            .expect("read admin-token")
            .trim()
            .to_owned()
    }

    /// `handoff ARGS` against this server, with the bootstrap admin token.
    pub(crate) fn cli(&self, args: &[&str]) -> Run {
        self.cli_with_token(&self.admin_token(), args)
    }

    /// `handoff ARGS` against this server, with `token`.
    pub(crate) fn cli_with_token(&self, token: &str, args: &[&str]) -> Run {
        let mut cmd = handoff_command(&self.cwd);
        cmd.env("HANDOFF_ADDR", &self.addr)
            .env("HANDOFF_TOKEN", token)
            .args(args);
        run(cmd)
    }

    /// `handoff ARGS` against this server with no token option: the CLI
    /// falls back to `./handoff-data/admin-token` in `cwd`.
    pub(crate) fn cli_default_token(&self, args: &[&str]) -> Run {
        let mut cmd = handoff_command(&self.cwd);
        cmd.env("HANDOFF_ADDR", &self.addr).args(args);
        run(cmd)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub(crate) fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop within 60 s of SIGTERM:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `GET /healthz` on `port` answers 200.
fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Copies the database (with its WAL files) and keys of data directory
/// `from` to a new directory `to`.
pub(crate) fn copy_data_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to.join("keys")).expect("create copy");
    for name in ["handoff.db", "handoff.db-wal", "handoff.db-shm"] {
        let src = from.join(name);
        if src.exists() {
            fs::copy(&src, to.join(name)).expect("copy database file");
        }
    }
    for entry in fs::read_dir(from.join("keys")).expect("read keys") {
        let entry = entry.expect("key entry");
        fs::copy(entry.path(), to.join("keys").join(entry.file_name())).expect("copy key");
    }
}
