//! The page's connection cap, in a test binary of its own: it counts this
//! process's threads, which other tests running beside it would change.

mod common;

use std::sync::Arc;
use std::time::Duration;

use simplenn::modelfile;
use simplenn::serve::{self, State, MAX_CONNECTIONS};

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// More connections than the cap, all idle: the server holds a thread for
/// at most `MAX_CONNECTIONS` of them (upstream took a thread for each, and
/// 4,000 stalled uploads held 509 MB); the rest wait in the listen queue
/// and are served once others end (here at the idle ones' 10 s timeout).
#[test]
fn connections_past_the_cap_wait_on_no_thread() {
    let t = tempfile::tempdir().unwrap();
    let (model, _) = common::small_model(t.path());
    let (params, image) = modelfile::load_model_image(&model).unwrap();
    let state = State::for_model(params, &model, None, None).with_image(image);
    let server = serve::start("127.0.0.1", 0, Arc::new(state)).unwrap();
    let a = server.addr();
    std::thread::sleep(Duration::from_millis(500));
    let before = threads();
    let extra = 100;
    let idle: Vec<std::net::TcpStream> = (0..MAX_CONNECTIONS + extra)
        .map(|_| std::net::TcpStream::connect(a).unwrap())
        .collect();
    // Time for the server to take what it will (a hang guard would not
    // help: too few threads is what is checked).
    std::thread::sleep(Duration::from_secs(2));
    let during = threads() - before;
    assert!(
        // (The library keeps a few threads waiting for work from the start.)
        during > MAX_CONNECTIONS - 16 && during < MAX_CONNECTIONS + extra / 2,
        "{during} threads for {} idle connections (cap {MAX_CONNECTIONS})",
        idle.len()
    );
    // One more, behind them all: answered once the idle ones are closed.
    let answer = common::http::raw(
        a,
        b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 200, "{}", answer.head);
    drop(idle);
    server.stop();
}
