//! The join check: after applying a configuration, did the device get on its network?
//!
//! `exec:CMD` runs CMD through `sh -c`. Its exit code is the protocol's status code
//! (PROTOCOL.md §8), so a script can say why it failed: 0 joined, 1 AP not found,
//! 2 authentication failed, 3 no IP address, 4 configuration rejected, 5 timeout; any other
//! code (or death by a signal) is reported as "other". No check means "joined".

use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use zerotouch_proto::FailureReason;

use super::apply::{DeliveredConfig, apply_environment};
use crate::error::AppError;

/// `--join-check`: how the agent finds out whether it joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinCheck {
    /// `exec:CMD`: run CMD; exit code = status code.
    Exec(String),
    /// `none`: assume the join worked.
    None,
}

impl FromStr for JoinCheck {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            _ if s == "none" => Ok(Self::None),
            Some(("exec", cmd)) if !cmd.is_empty() => Ok(Self::Exec(cmd.to_owned())),
            _ => Err(format!("`{s}` is not a join check: use exec:CMD or none")),
        }
    }
}

/// Maps a join-check exit code to the join result.
pub fn result_from_exit_code(code: Option<i32>) -> Result<(), FailureReason> {
    match code {
        Some(0) => Ok(()),
        Some(code) => Err(u8::try_from(code)
            .ok()
            .and_then(FailureReason::from_u8)
            .unwrap_or(FailureReason::Other)),
        None => Err(FailureReason::Other),
    }
}

/// The words for a finished join check: "exited with 2 (auth-failed)", "was killed by
/// signal 9", with a hint for the shell's 126/127 (not executable / not found).
pub fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited with 0 (joined)".into(),
        (Some(126), _) => {
            "exited with 126: the shell found the program but cannot execute it (chmod +x?)".into()
        }
        (Some(127), _) => "exited with 127: the shell did not find the program".into(),
        (Some(code), _) => {
            let reason = result_from_exit_code(Some(code))
                .err()
                .map_or("other", |r| r.name());
            format!("exited with {code} ({reason})")
        }
        (None, Some(signal)) => format!("was killed by signal {signal} (other)"),
        (None, None) => "ended without an exit code (other)".into(),
    }
}

/// Runs the join check. The command sees the non-secret parts of the configuration
/// (`ZEROTOUCH_SSID`, `ZEROTOUCH_SECURITY`, ...) but never the PSK: it checks the link, it
/// does not need the secret. A check that runs longer than `timeout` is killed: timeout.
pub async fn run_join_check(
    check: &JoinCheck,
    config: Option<&DeliveredConfig>,
    timeout: Duration,
) -> Result<(), FailureReason> {
    run_join_check_detailed(check, config, timeout)
        .await
        .map_err(|(reason, _)| reason)
}

/// [`run_join_check`], with a description of a failure for the agent's final error.
pub async fn run_join_check_detailed(
    check: &JoinCheck,
    config: Option<&DeliveredConfig>,
    timeout: Duration,
) -> Result<(), (FailureReason, String)> {
    let JoinCheck::Exec(command) = check else {
        return Ok(());
    };
    let mut cmd = tokio::process::Command::new("sh");
    // Its own process group: a check that is stopped (timeout, or the attempt ended while it
    // ran) is killed with everything it started, not only `sh`.
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(config) = config {
        for (name, value) in apply_environment(config) {
            if name != "ZEROTOUCH_PSK" && name != "ZEROTOUCH_NETWORKS_JSON" {
                cmd.env(name, value.as_str());
            }
        }
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            tracing::error!(%command, %err, "cannot run the join check");
            return Err((
                FailureReason::Other,
                format!("cannot run the join check `{command}`: {err}"),
            ));
        }
    };
    // Dropped before the check finished (the agent abandons the attempt and aborts this
    // future) or at the timeout: the whole group is killed.
    let mut group = child.id().map(GroupKill);
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    if waited.is_ok()
        && let Some(group) = group.as_mut()
    {
        // Finished: what it left running in the background is its own business.
        group.0 = 0;
    }
    drop(group);
    match waited {
        Ok(Ok(status)) => {
            let result = result_from_exit_code(status.code());
            let words = describe_status(status);
            tracing::info!(%command, result = %words, "join check finished");
            result.map_err(|reason| (reason, format!("the join check `{command}` {words}")))
        }
        Ok(Err(err)) => {
            tracing::error!(%command, %err, "join check failed to run");
            Err((
                FailureReason::Other,
                format!("the join check `{command}` failed to run: {err}"),
            ))
        }
        Err(_) => {
            tracing::warn!(%command, ?timeout, "join check timed out");
            let _ = child.kill().await;
            Err((
                FailureReason::Timeout,
                format!(
                    "the join check `{command}` ran longer than {} s (timeout; see --join-timeout)",
                    timeout.as_secs()
                ),
            ))
        }
    }
}

/// Kills the process group of a join check when dropped (a pid of 0 is disarmed).
struct GroupKill(u32);

impl Drop for GroupKill {
    fn drop(&mut self) {
        let pid = i32::try_from(self.0)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid
            && let Err(err) =
                rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
            && err != rustix::io::Errno::SRCH
        {
            tracing::warn!(%err, pgid = self.0, "could not stop the join check's processes");
        }
    }
}

/// Checks at start-up that the program a `sh -c` command line starts exists and can run:
/// a path must be an executable file, a bare name a program on PATH or a shell builtin.
/// Command lines that start with shell syntax (assignments, quotes, `$`, brackets) are left
/// to the shell. `flag` names the option in messages.
pub fn check_command(command: &str, flag: &str) -> Result<(), AppError> {
    use std::os::unix::fs::PermissionsExt;
    let Some(word) = command.split_whitespace().next() else {
        return Err(AppError::Usage(format!("{flag} exec: needs a command")));
    };
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c));
    if !plain {
        return Ok(());
    }
    if word.contains('/') {
        return match std::fs::metadata(word) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err(AppError::NotFound(format!(
                    "{flag}: the program {word} does not exist: install it or correct the path"
                )))
            }
            Err(err) => Err(AppError::io(format_args!("{flag}: cannot use {word}"), err)),
            Ok(meta) if !meta.is_file() => Err(AppError::Usage(format!(
                "{flag}: {word} is not a file; give the program to run"
            ))),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err(AppError::Failed(format!(
                "{flag}: {word} is not executable: `chmod +x {word}`"
            ))),
            Ok(_) => Ok(()),
        };
    }
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v -- \"$1\" >/dev/null 2>&1", "sh", word])
        .stdin(Stdio::null())
        .status()
        .map_err(|e| AppError::io("cannot run sh to look up the command", e))?;
    if found.success() {
        Ok(())
    } else {
        Err(AppError::NotFound(format!(
            "{flag}: {word:?} is neither a program on PATH nor a shell builtin: install it or give its full path"
        )))
    }
}

impl JoinCheck {
    /// The start-up check of `--join-check` (see [`check_command`]).
    pub fn check(&self) -> Result<(), AppError> {
        match self {
            Self::Exec(command) => check_command(command, "--join-check"),
            Self::None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_protocol_status_codes() {
        assert_eq!(result_from_exit_code(Some(0)), Ok(()));
        assert_eq!(
            result_from_exit_code(Some(1)),
            Err(FailureReason::ApNotFound)
        );
        assert_eq!(
            result_from_exit_code(Some(2)),
            Err(FailureReason::AuthFailed)
        );
        assert_eq!(
            result_from_exit_code(Some(3)),
            Err(FailureReason::NoIpAddress)
        );
        assert_eq!(result_from_exit_code(Some(5)), Err(FailureReason::Timeout));
        assert_eq!(result_from_exit_code(Some(42)), Err(FailureReason::Other));
        assert_eq!(result_from_exit_code(None), Err(FailureReason::Other));
    }

    #[test]
    fn join_check_parses() {
        assert_eq!("none".parse::<JoinCheck>(), Ok(JoinCheck::None));
        assert_eq!(
            "exec:iw dev".parse::<JoinCheck>(),
            Ok(JoinCheck::Exec("iw dev".into()))
        );
        assert!("exec:".parse::<JoinCheck>().is_err());
        assert!("ping".parse::<JoinCheck>().is_err());
    }

    #[tokio::test]
    async fn join_check_runs_the_command_and_times_out() {
        let long = Duration::from_secs(10);
        assert_eq!(
            run_join_check(&JoinCheck::Exec("exit 2".into()), None, long).await,
            Err(FailureReason::AuthFailed)
        );
        assert_eq!(
            run_join_check(&JoinCheck::Exec("true".into()), None, long).await,
            Ok(())
        );
        assert_eq!(run_join_check(&JoinCheck::None, None, long).await, Ok(()));
        let slow = run_join_check(
            &JoinCheck::Exec("sleep 5".into()),
            None,
            Duration::from_millis(100),
        )
        .await;
        assert_eq!(slow, Err(FailureReason::Timeout));
    }

    #[tokio::test]
    async fn a_timed_out_check_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let command = format!(
            "sleep 60 & echo $! > '{}.tmp' && mv '{0}.tmp' '{0}'; wait",
            pid_file.display()
        );
        let result =
            run_join_check(&JoinCheck::Exec(command), None, Duration::from_millis(300)).await;
        assert_eq!(result, Err(FailureReason::Timeout));
        let pid = std::fs::read_to_string(&pid_file).expect("the check started its child");
        let gone = || match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        };
        // SIGKILL is immediate; only the reaping of the orphan by init may lag.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "the check's background child {pid} survived the timeout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
