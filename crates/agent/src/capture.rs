//! Bounded capture of a child's output stream.

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

/// What was read from a stream: at most `cap` bytes kept, the rest counted.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub bytes: Vec<u8>,
    pub total: u64,
    pub truncated: bool,
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Reads `reader` to EOF (or until `stop` fires) keeping the first `cap`
/// bytes. Keeps draining past the cap so the writer never blocks on a full
/// pipe.
pub(crate) async fn read_capped<R: AsyncRead + Unpin>(
    mut reader: R,
    cap: usize,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let mut out = Captured::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = reader.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = stop.changed() => break,
        };
        out.total += n as u64;
        let room = cap.saturating_sub(out.bytes.len());
        if room < n {
            out.truncated = true;
        }
        out.bytes.extend_from_slice(&buf[..n.min(room)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_and_counts() {
        let (_tx, rx) = watch::channel(false);
        let data = [b'x'; 100];
        let c = read_capped(&data[..], 40, rx.clone()).await;
        assert_eq!(c.bytes.len(), 40);
        assert_eq!(c.total, 100);
        assert!(c.truncated);
        let c = read_capped(&data[..], 100, rx).await;
        assert!(!c.truncated);
        assert_eq!(c.bytes.len(), 100);
    }
}
