//! The operator's text logs carry no terminal colour codes into files and pipes.
#![allow(clippy::unwrap_used)]

use std::process::Command;

/// `run` without any cluster to reach fails at once and logs why, in text, to a pipe.
#[test]
fn text_logs_written_to_a_pipe_carry_no_colour_codes() {
    let empty =
        std::env::temp_dir().join(format!("gatehouse-no-kubeconfig-{}", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse-operator"))
        .args(["run", "--log-format", "text", "--leader-election", "false"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .env("KUBECONFIG", &empty)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&empty);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "run without a cluster should fail"
    );
    assert!(log.contains("operator stopped"), "no log line: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
}
