//! Child processes for tests: the `garrison` binary with a clean
//! environment, a child that never outlives its test, a served child that
//! is ready once it printed its listen line, and one test run alone in a
//! fresh copy of its test binary.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long [`Served::start`] waits for a child's ready lines.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The line `garrison serve` and `garrison demo` print first once they
/// listen, followed by the address.
pub const LISTEN_PREFIX: &str = "garrison listening on http://";

/// `bin` (the `garrison` binary: the cli suite passes
/// `env!("CARGO_BIN_EXE_garrison")`) with every `GARRISON_*` variable and
/// `RUST_LOG` removed from its environment, so the developer's settings
/// never reach a test.
pub fn clean_command(bin: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GARRISON_") {
            c.env_remove(&k);
        }
    }
    c.env_remove("RUST_LOG");
    c
}

/// The lines of `out` (a child's stdout or stderr) on a channel. The reading
/// thread drains the pipe to its end even when nobody listens any more, so a
/// child never fails on a closed pipe.
pub fn line_reader(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// A child process killed (SIGKILL) and reaped when dropped, however the
/// test ends, unless it has already exited.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then the exit status (panics unless it exits within 10 s;
    /// the child is then killed on drop).
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.as_ref().is_ok_and(ExitStatus::success),
            "kill -TERM {pid}: {sent:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.0.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("waiting for {pid}: {e}"),
            }
        }
        panic!("{pid} did not stop on SIGTERM");
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill();
        }
    }
}

/// A served child (`garrison serve`, `garrison demo`) that printed its
/// ready lines, the first of them `garrison listening on http://ADDR`.
#[derive(Debug)]
pub struct Served {
    pub process: KillOnDrop,
    /// `host:port` from the listen line.
    pub addr: String,
    /// The ready lines, in order.
    pub lines: Vec<String>,
    /// The rest of the child's stdout.
    pub stdout: mpsc::Receiver<String>,
}

impl Served {
    /// Spawns `cmd` with stdout piped (stderr as the caller set it) and
    /// waits up to [`READY_TIMEOUT`] for `ready_lines` lines; panics, with
    /// the lines so far, when they do not come or the first is not the
    /// listen line.
    pub fn start(cmd: &mut Command, ready_lines: usize) -> Served {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child
            .stdout
            .take()
            .map(line_reader)
            .unwrap_or_else(|| panic!("{cmd:?} has no stdout"));
        let process = KillOnDrop(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut lines = Vec::new();
        while lines.len() < ready_lines.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            match stdout.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(e) => panic!("{cmd:?} did not become ready ({e}); printed {lines:?}"),
            }
        }
        let addr = lines[0]
            .strip_prefix(LISTEN_PREFIX)
            .unwrap_or_else(|| panic!("{cmd:?}: first line is not the listen line: {lines:?}"))
            .to_string();
        Served {
            process,
            addr,
            lines,
            stdout,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, then asserts a clean exit.
    pub fn stop(self) {
        let status = self.process.terminate();
        assert!(status.success(), "the served child exited with {status}");
    }
}

/// The variable that tells a copy of a test binary which test it was started
/// to run alone (see [`alone_in_process`]).
pub const ALONE_ENV: &str = "GARRISON_TEST_ALONE";

/// Whether the calling test, named `test` (see [`test_name!`](crate::test_name)),
/// should run its body in this process. Integration tests of a crate share
/// one process, so a test that needs the process to itself (exact
/// process-wide counters) starts with
/// `if !alone_in_process(test_name!(the_test)) { return; }`: in the normal
/// run this re-executes the test binary with only that test, asserts it
/// passed (exactly one test ran), and returns `false`; in that copy it
/// returns `true`.
pub fn alone_in_process(test: &str) -> bool {
    if std::env::var_os(ALONE_ENV).is_some_and(|v| v == test) {
        return true;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let out = Command::new(&exe)
        .args([test, "--exact", "--test-threads", "1"])
        .env(ALONE_ENV, test)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} alone in {} ({}):\n{stdout}\n{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// The test harness's name for test function `$f` of the calling module:
/// its module path without the crate, e.g. `suite::crash::crash_child`. For
/// tests that re-execute their own test binary with a name filter.
#[macro_export]
macro_rules! test_name {
    ($f:ident) => {
        $crate::process::without_crate(concat!(module_path!(), "::", stringify!($f)))
    };
}

/// `path` without its first segment (the crate's name); `const` so that
/// [`test_name!`](crate::test_name) can name a constant.
pub const fn without_crate(path: &'static str) -> &'static str {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b':' && bytes[i + 1] == b':' {
            return path.split_at(i + 2).1;
        }
        i += 1;
    }
    path
}
