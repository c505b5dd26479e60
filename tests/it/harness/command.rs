//! One-shot runs of the `portico` binary (`check`, `--version`, `serve` on a bad file) with a
//! bounded run time: a command that should exit but keeps running is killed and reported.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a one-shot command may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished (or killed) command printed and how it ended.
pub struct CliOutput {
    pub args: Vec<String>,
    /// The exit code; `None` when killed by a signal (including our timeout kill).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `portico <args>` in `cwd`, waiting at most [`RUN_TIMEOUT`].
pub fn portico<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> CliOutput {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn the portico binary");
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });

    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // SAFETY: kill(2) has no memory-safety preconditions; the group is our unreaped
            // child's own (process_group(0)).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOutput {
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect(),
        code: status.code(),
        timed_out,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

impl CliOutput {
    /// stdout followed by stderr, for searching text wherever the command printed it.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "unexpected exit code\n{self}");
    }
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ portico {}", self.args.join(" "))?;
        if self.timed_out {
            writeln!(f, "(still running after {RUN_TIMEOUT:?}; killed)")?;
        }
        writeln!(f, "exit code: {:?}", self.code)?;
        writeln!(f, "---- stdout ----\n{}", self.stdout)?;
        write!(f, "---- stderr ----\n{}", self.stderr)
    }
}
