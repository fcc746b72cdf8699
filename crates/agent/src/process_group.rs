//! Running a child in its own process group: stdin feeding, bounded output
//! capture, a deadline, and killing the whole group (grandchildren included).
//!
//! Children are spawned with `process_group(0)`, so their pid is the group id.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::capture::{Captured, read_capped};
use crate::sandbox::kill_process_group;

/// How long output readers may run on after the group is killed: only a
/// process that left the group (setsid) can still hold the pipes open.
const CAPTURE_GRACE: Duration = Duration::from_secs(2);

/// How a supervised child ended.
#[derive(Debug)]
pub(crate) enum Exit {
    Status(ExitStatus),
    TimedOut,
    WaitFailed(io::Error),
}

/// A finished child and its captured output.
#[derive(Debug)]
pub(crate) struct Finished {
    pub exit: Exit,
    pub stdout: Captured,
    pub stderr: Captured,
    /// Capture stopped before EOF because something outside the group kept a
    /// pipe open.
    pub capture_cut: bool,
}

/// A spawned child with its group and output readers.
pub(crate) struct Running {
    child: Child,
    group: ProcessGroup,
    stdout: JoinHandle<Captured>,
    stderr: JoinHandle<Captured>,
    stdin: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Spawns `cmd` as a group leader with piped output; `stdin` is written then
/// closed (none: stdin is `/dev/null`).
pub(crate) fn spawn(mut cmd: Command, stdin: Option<Vec<u8>>, cap: usize) -> io::Result<Running> {
    cmd.process_group(0)
        .kill_on_drop(true)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let group = ProcessGroup::new(child.id());
    let (stop, stop_rx) = watch::channel(false);
    let stdout = spawn_reader(child.stdout.take(), cap, stop_rx.clone());
    let stderr = spawn_reader(child.stderr.take(), cap, stop_rx);
    let stdin = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Some(data)) => Some(tokio::spawn(async move {
            // A program that exits without reading its input is not an error here.
            let _ = pipe.write_all(&data).await;
            let _ = pipe.shutdown().await;
        })),
        _ => None,
    };
    Ok(Running {
        child,
        group,
        stdout,
        stderr,
        stdin,
        stop,
    })
}

impl Running {
    /// Waits for the child until `deadline`, then kills whatever is left of
    /// its group (also after a normal exit: a unit's background processes do
    /// not outlive it) and collects the output.
    pub async fn finish(mut self, deadline: Instant) -> Finished {
        let exit = match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(status)) => Exit::Status(status),
            Ok(Err(e)) => Exit::WaitFailed(e),
            Err(_) => {
                let _ = self.child.start_kill();
                Exit::TimedOut
            }
        };
        self.group.kill();
        if matches!(exit, Exit::TimedOut) {
            let _ = self.child.wait().await;
        }
        if let Some(stdin) = self.stdin.take() {
            stdin.abort();
        }
        let grace = Instant::now() + CAPTURE_GRACE;
        let (stdout, cut_out) = collect(self.stdout, grace, &self.stop).await;
        let (stderr, cut_err) = collect(self.stderr, grace, &self.stop).await;
        let capture_cut = cut_out || cut_err;
        Finished {
            exit,
            stdout,
            stderr,
            capture_cut,
        }
    }
}

fn spawn_reader<R: AsyncRead + Send + Unpin + 'static>(
    pipe: Option<R>,
    cap: usize,
    stop: watch::Receiver<bool>,
) -> JoinHandle<Captured> {
    tokio::spawn(async move {
        match pipe {
            Some(p) => read_capped(p, cap, stop).await,
            None => Captured::default(),
        }
    })
}

/// Awaits a reader until `grace`; past it, stops every reader and keeps what
/// was read. Returns whether capture was cut short.
async fn collect(
    mut handle: JoinHandle<Captured>,
    grace: Instant,
    stop: &watch::Sender<bool>,
) -> (Captured, bool) {
    match tokio::time::timeout_at(grace, &mut handle).await {
        Ok(done) => (done.unwrap_or_default(), false),
        Err(_) => {
            let _ = stop.send(true);
            (handle.await.unwrap_or_default(), true)
        }
    }
}

/// A spawned process group, killed when asked or when dropped (a cancelled
/// unit must not leave processes behind).
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Option<u32>,
}

impl ProcessGroup {
    /// `pid` of a child spawned as its own group leader.
    pub fn new(pid: Option<u32>) -> ProcessGroup {
        // 0 and 1 would address our own group or init: never signal those.
        ProcessGroup {
            pgid: pid.filter(|p| *p > 1),
        }
    }

    /// SIGKILLs every process still in the group; a group already gone is fine.
    pub fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            kill_process_group(pgid);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
