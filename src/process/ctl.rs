//! The control socket: `portico ctl status|reload|stop|reopen` talks to the master over a Unix
//! socket at `DATA_DIR/portico.sock`, created with mode 0600 (only the user that runs portico
//! may use it).
//!
//! Protocol: the client sends one command line (`status`, `reload`, `stop`, `reopen`); the
//! master answers with text and closes. The answer's first line starts with `ok` or `error`;
//! `ctl` prints the answer and exits 0 for `ok`, 1 otherwise.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// The socket's file name in the data directory.
pub const SOCKET: &str = "portico.sock";

/// How long a client may take to send its command, and the master to answer.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A command from a client, with where to send the answer.
pub struct Request {
    pub command: String,
    pub reply: oneshot::Sender<String>,
}

/// Listens on the control socket and turns each command into an event (`wrap`). `take_over`
/// replaces a socket another master is listening on (a binary upgrade); otherwise a live one is
/// left alone, with a warning. The socket's path, when listening.
pub fn serve<E: Send + 'static>(
    data_dir: &Path,
    take_over: bool,
    events: mpsc::UnboundedSender<E>,
    wrap: fn(Request) -> E,
) -> Option<PathBuf> {
    let path = data_dir.join(SOCKET);
    if path.exists() {
        let live = std::os::unix::net::UnixStream::connect(&path).is_ok();
        if live && !take_over {
            tracing::warn!(path = %path.display(), "another portico master uses this control socket; `portico ctl` will not reach this one (use another --data-dir)");
            return None;
        }
        let _ = std::fs::remove_file(&path);
    }
    let listener = match bind(&path) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot create the control socket");
            return None;
        }
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let events = events.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(TIMEOUT, answer(stream, events, wrap)).await;
            });
        }
    });
    Some(path)
}

fn bind(path: &Path) -> io::Result<UnixListener> {
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn answer<E>(
    stream: UnixStream,
    events: mpsc::UnboundedSender<E>,
    wrap: fn(Request) -> E,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(256)).read_line(&mut line).await?;
    let (reply, answer) = oneshot::channel();
    let command = line.trim().to_string();
    if events.send(wrap(Request { command, reply })).is_err() {
        write.write_all(b"error: the master is stopping\n").await?;
        return Ok(());
    }
    let text = answer
        .await
        .unwrap_or_else(|_| "error: no answer\n".to_string());
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// The client side: sends `command` to the master of `data_dir` and returns its answer.
pub fn call(data_dir: &Path, command: &str) -> io::Result<String> {
    use std::io::{Read, Write};
    let path = data_dir.join(SOCKET);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "no portico master answers at {} ({e}); is one running with this --data-dir?",
                path.display()
            ),
        )
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
