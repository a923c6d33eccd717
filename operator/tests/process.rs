//! The operator process: it runs with lazily committed allocator arenas, as the process it was
//! started as (gatehouse-allocator's restart keeps the pid and the name).
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An API server that takes connections and never answers: `run` waits on it.
fn silent_api_server_kubeconfig(dir: &std::path::Path) -> (TcpListener, std::path::PathBuf) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: silent\n  context:\n    cluster: silent\n    user: nobody\ncurrent-context: silent\nusers:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .unwrap();
    (listener, kubeconfig)
}

#[test]
fn the_operator_runs_with_lazily_committed_arenas_as_the_process_it_was_started_as() {
    let dir =
        std::env::temp_dir().join(format!("gatehouse-operator-process-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_api, kubeconfig) = silent_api_server_kubeconfig(&dir);
    let mut operator = Command::new(env!("CARGO_BIN_EXE_gatehouse-operator"))
        .args([
            "run",
            "--leader-election",
            "false",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("MIMALLOC_ARENA_EAGER_COMMIT")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = |file: &str| std::fs::read(format!("/proc/{}/{file}", operator.id())).unwrap();
    // The option is in the environment once the process has started itself again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut environ = read("environ");
    let set = |environ: &[u8]| {
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"MIMALLOC_ARENA_EAGER_COMMIT=0")
    };
    while !set(&environ) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        environ = read("environ");
    }
    let cmdline = read("cmdline");
    let still_running = operator.try_wait().unwrap().is_none();
    let _ = operator.kill();
    let _ = operator.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(still_running, "the operator should wait for its API server");
    assert!(set(&environ), "{}", String::from_utf8_lossy(&environ));
    let arg0 = cmdline.split(|b| *b == 0).next().unwrap();
    assert_eq!(arg0, env!("CARGO_BIN_EXE_gatehouse-operator").as_bytes());
}
