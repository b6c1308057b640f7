//! `simplenn serve`'s HTTP server, whole: each input is the bytes a client
//! sends on one connection (request line, headers, body; several requests
//! where it holds them). The server answers or closes; nothing panics,
//! whichever of its threads reads the input.
#![no_main]
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use simplenn::model::{Dims, Init, Params};
use simplenn::serve::{start, Server, State};

/// A 784-16-10 model, a test set of 20 random 28 × 28 images and a metrics
/// log, served on a free loopback port for the whole run.
fn server() -> SocketAddr {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("simplenn-fuzz-serve-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let n = 20u32;
            let pixels: Vec<u8> = (0..n as usize * 784).map(|i| (i * 37 % 256) as u8).collect();
            let labels: Vec<u8> = (0..n as u8).map(|i| i % 10).collect();
            simplenn::idx::write_idx(&dir.join("t10k-images-idx3-ubyte"), &[n, 28, 28], &pixels).unwrap();
            simplenn::idx::write_idx(&dir.join("t10k-labels-idx1-ubyte"), &[n], &labels).unwrap();
            let log = dir.join("metrics.jsonl");
            std::fs::write(
                &log,
                concat!(
                    r#"{"epoch":1,"train_loss":0.9595864354527096,"train_accuracy":0.668,"val_loss":0.3967333255727815,"val_accuracy":0.897,"lr":0.05018265,"seconds":0.068780113,"wall_seconds":0.06890329,"samples_per_sec":830801.4533164507}"#,
                    "\n"
                ),
            )
            .unwrap();
            let params = Params::init(Dims::new(784, &[16], 10), Init::He, 1);
            let state = State::for_model(params, &dir.join("m.safetensors"), Some(dir.clone()), Some(log))
                .with_image(Some((28, 28)));
            start("127.0.0.1", 0, Arc::new(state)).unwrap()
        })
        .addr()
}

fuzz_target!(|data: &[u8]| {
    let addr = server();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer and close before it has read everything.
    let _ = s.write_all(data);
    let _ = s.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
});
