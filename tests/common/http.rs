//! A minimal HTTP/1.1 client over `TcpStream` for the server tests: one
//! request per connection, the whole answer read back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// A response: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The status line and headers, as sent.
    pub head: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send raw bytes and read the answer.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let mut body = buf[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        content_type,
        body,
        head,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}

/// One request with `Connection: close`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        req.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, "", b"")
}

pub fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Answer {
    request(addr, "POST", path, content_type, body)
}

/// A 280 × 280 white PNG with black strokes through `points` (pad coordinates),
/// 20 px wide: what the page's pad sends.
pub fn drawing(strokes: &[&[(f32, f32)]]) -> Vec<u8> {
    let mut img = image::GrayImage::from_pixel(280, 280, image::Luma([255]));
    for stroke in strokes {
        for pair in stroke.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            let steps = ((x1 - x0).hypot(y1 - y0) as usize).max(1);
            for s in 0..=steps {
                let t = s as f32 / steps as f32;
                let (cx, cy) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
                for y in (cy - 10.0).max(0.0) as u32..(cy + 10.0).min(280.0) as u32 {
                    for x in (cx - 10.0).max(0.0) as u32..(cx + 10.0).min(280.0) as u32 {
                        if (x as f32 - cx).hypot(y as f32 - cy) <= 10.0 {
                            img.put_pixel(x, y, image::Luma([0]));
                        }
                    }
                }
            }
        }
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    png
}

/// A "1": one vertical stroke.
pub fn one() -> Vec<u8> {
    drawing(&[&[(140.0, 40.0), (140.0, 240.0)]])
}

/// A "0": an ellipse.
pub fn zero() -> Vec<(f32, f32)> {
    (0..=40)
        .map(|i| {
            let a = i as f32 / 40.0 * std::f32::consts::TAU;
            (140.0 + 60.0 * a.sin(), 140.0 - 95.0 * a.cos())
        })
        .collect()
}

/// A child `simplenn` with its stdout lines arriving on a channel.
pub struct Child {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Child {
    pub fn spawn(args: &[&str]) -> Child {
        Child::spawn_in(Path::new("."), args)
    }

    /// [`Child::spawn`], run in `dir`.
    pub fn spawn_in(dir: &Path, args: &[&str]) -> Child {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_simplenn"))
            .current_dir(dir)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child { child, lines: rx }
    }

    /// The next stdout line containing `needle` (panics after `secs`).
    pub fn wait_for(&self, needle: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(e) => panic!("no stdout line with {needle:?} ({e})"),
            }
        }
    }

    /// The next standard error line containing `needle` (panics after
    /// `secs`): read on a thread of its own, so a line that never comes
    /// fails the test instead of hanging it.
    #[allow(dead_code)]
    pub fn wait_for_stderr(&mut self, needle: &str, secs: u64) -> String {
        use std::io::BufRead;
        let err = self.child.stderr.take().expect("stderr not yet taken");
        let (tx, rx) = std::sync::mpsc::channel();
        let needle = needle.to_string();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(err).lines().map_while(Result::ok);
            let _ = tx.send(lines.find(|l| l.contains(&needle)));
        });
        match rx.recv_timeout(Duration::from_secs(secs)) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("standard error ended without the line"),
            Err(e) => panic!("no standard error line in {secs} s ({e})"),
        }
    }

    /// The address in the line that announces the page (`http://host:port/`).
    pub fn address(&self) -> SocketAddr {
        let line = self.wait_for("http://", 120);
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("url");
        url.trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("host:port")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
