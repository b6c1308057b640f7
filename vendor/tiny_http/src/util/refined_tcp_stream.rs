use std::io::Result as IoResult;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};

use crate::connection::Connection;
#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use crate::ssl::SslStream;

pub(crate) enum Stream {
    Http(Connection),
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    Https(SslStream),
}

impl Stream {
    // simplenn patch: was `Clone`, whose `try_clone().unwrap()` panicked
    // when the process ran out of file descriptors.
    fn try_clone(&self) -> IoResult<Self> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.try_clone().map(Stream::Http),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => Ok(Stream::Https(ssl_stream.clone())),
        }
    }
}

impl From<Connection> for Stream {
    fn from(tcp_stream: Connection) -> Self {
        Stream::Http(tcp_stream)
    }
}

impl Stream {
    fn secure(&self) -> bool {
        match self {
            Stream::Http(_) => false,
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => true,
        }
    }

    fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.peer_addr(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.peer_addr(),
        }
    }

    // simplenn patch: see `Closer::set_write_timeout`.
    fn set_write_timeout(&self, t: std::time::Duration) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.set_write_timeout(t),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => Ok(()),
        }
    }

    // simplenn patch: see `Closer::linger`.
    fn set_read_timeout(&self, t: std::time::Duration) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.set_read_timeout(t),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => Err(std::io::ErrorKind::Unsupported.into()),
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.shutdown(how),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.read(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.write(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.write(buf),
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.flush(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.flush(),
        }
    }
}

pub struct RefinedTcpStream {
    stream: Stream,
    close_read: bool,
    close_write: bool,
}

impl RefinedTcpStream {
    pub(crate) fn new<S>(stream: S) -> IoResult<(RefinedTcpStream, RefinedTcpStream)>
    where
        S: Into<Stream>,
    {
        let stream: Stream = stream.into();

        let (read, write) = (stream.try_clone()?, stream);

        let read = RefinedTcpStream {
            stream: read,
            close_read: true,
            close_write: false,
        };

        let write = RefinedTcpStream {
            stream: write,
            close_read: false,
            close_write: true,
        };

        Ok((read, write))
    }

    /// Returns true if this struct wraps around a secure connection.
    #[inline]
    pub(crate) fn secure(&self) -> bool {
        self.stream.secure()
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }

    /// simplenn patch: what lets an answer end the connection (see
    /// [`Closer`]); without a second handle on the socket (no descriptor
    /// left), it still stops the connection's requests.
    pub(crate) fn closer(&self) -> Closer {
        Closer {
            stream: self.stream.try_clone().ok().map(std::sync::Mutex::new),
            closed: std::sync::atomic::AtomicBool::new(false),
            failed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// simplenn patch: ends a connection once an answer is sent, for an answer
/// after which the connection's bytes cannot be trusted (a request body cut
/// off half read): the sending side is shut, so the client sees the end at
/// once and nothing more can be written to it, and the connection hands
/// out no further request (what is left of the body would read as one).
/// What the client still sends is then read and dropped for a while
/// ([`Closer::linger`]), so that a peer still writing gets no reset before
/// it has read the answer.
pub(crate) struct Closer {
    stream: Option<std::sync::Mutex<Stream>>,
    closed: std::sync::atomic::AtomicBool,
    failed: std::sync::atomic::AtomicBool,
}

/// simplenn patch: how long, and how many bytes, [`Closer::linger`] reads
/// from a client after the connection's last answer.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

impl Closer {
    pub(crate) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(Ok(mut stream)) = self.stream.as_ref().map(|s| s.lock()) {
            stream.shutdown(Shutdown::Write).ok();
        }
    }

    /// Ends the connection because an answer could not be sent: the
    /// client is gone or reads nothing, and [`Self::linger`] would only
    /// hold the thread.
    pub(crate) fn fail(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.close();
    }

    /// The connection's end, after its last answer was sent: its sending
    /// side is shut (the client reads the end once it has read the
    /// answer), then what the client still sends is read and dropped, for
    /// up to 2 s and 1 MiB, until the client closes too. Closing a socket
    /// with unread bytes makes the kernel send a reset, which drops what
    /// the client has not read yet: a client that had sent more requests
    /// after one answered `Connection: close` lost most of a 380 KB answer
    /// (123 KB read, then `ECONNRESET`). After a failed answer
    /// ([`Self::fail`]), nothing: the reset is then what ends it at once.
    pub(crate) fn linger(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(Ok(mut stream)) = self.stream.as_ref().map(|s| s.lock()) else {
            return;
        };
        if self.failed.load(SeqCst) {
            return;
        }
        stream.shutdown(Shutdown::Write).ok();
        let end = std::time::Instant::now() + LINGER_TIME;
        let mut buf = [0u8; 4096];
        let mut read = 0;
        while read < LINGER_BYTES {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || stream.set_read_timeout(left).is_err() {
                break;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    }

    /// The connection's write timeout (for writes on any of its handles:
    /// the socket is one), so that an answer's last write ends by its
    /// deadline. Without a second handle, nothing.
    pub(crate) fn set_write_timeout(&self, t: std::time::Duration) {
        if let Some(Ok(stream)) = self.stream.as_ref().map(|s| s.lock()) {
            stream.set_write_timeout(t).ok();
        }
    }

    /// Whether an answer has ended the connection.
    pub(crate) fn closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.stream.read(buf)
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
