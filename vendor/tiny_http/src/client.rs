use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Instant;

use crate::common::{HTTPVersion, Method};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // simplenn patch: what lets an answer end the connection
    closer: std::sync::Arc<crate::util::Closer>,

    // simplenn patch: the request being read is a HEAD, whose error
    // answers carry no body (RFC 9110 9.3.2)
    head_only: bool,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    /// simplenn patch: with what is wrong, for the answer.
    WrongHeader(HTTPVersion, &'static str),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// simplenn patch: a request line (its URL) past `MAX_LINE`.
    UriTooLong,
    /// simplenn patch: a head (request line and headers) past `MAX_HEAD`.
    HeadTooLarge,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let closer = std::sync::Arc::new(read_socket.closer());

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            closer,
            head_only: false,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// simplenn patch: the connection's lingering close, once it hands
    /// out no more requests (see `util::Closer::linger`), after what the
    /// library wrote itself (its 400s, say) is sent: where that cannot be,
    /// the client is gone and the close is not put off.
    pub(crate) fn linger(&self) {
        if self.sink.flush().is_ok() {
            self.closer.linger();
        }
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// simplenn patch: `deadline` is set when a request's first byte
    /// arrives, and the head (request line and headers) must be complete by
    /// then: each read times out after 10 s, but a client sending a byte
    /// every few seconds passed every read and held its thread for ever.
    ///
    /// simplenn patch: in a header line (`header`), a byte past ASCII (RFC
    /// 9110, 5.5: obs-text, which a value may hold: a cookie another local
    /// page set, a user agent) is read as `?`, which no header simplenn
    /// reads takes as valid; upstream refused the whole request. The
    /// request line must still be ASCII.
    fn read_next_line(
        &mut self,
        deadline: &mut Option<Instant>,
        header: bool,
    ) -> IoResult<AsciiString> {
        let mut buf: Vec<u8> = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            // simplenn patch: a line without end would grow without end.
            // The limit is on the line, not its end: a CR waiting for its
            // LF does not count (else CR LF lines got one byte fewer than
            // LF lines).
            if buf.len() - usize::from(prev_byte_was_cr) > MAX_LINE {
                return Err(IoError::new(ErrorKind::InvalidData, "header line too long"));
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(IoError::new(ErrorKind::TimedOut, "request head too slow"));
            }
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(Ok(b)) => b,
                // simplenn patch: a read that times out before any byte of a
                // request has come (a kept-alive connection left idle) ends
                // the connection without an answer: upstream sent a 408, which
                // a client sending its next request just then reads as that
                // request's answer.
                Some(Err(e))
                    if deadline.is_none()
                        && matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
                {
                    return Err(IoError::new(
                        ErrorKind::ConnectionAborted,
                        "idle connection",
                    ))
                }
                Some(Err(e)) => return Err(e),
                None => return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF")),
            };
            deadline.get_or_insert_with(|| Instant::now() + HEAD_DEADLINE);

            // simplenn patch: a bare LF ends a line too (RFC 9112, 2.2), where
            // the line used to run on to the next CR LF (a request of LF
            // lines waited out the read timeout, and an LF inside a header
            // hid the next one in its value); a CR not before an LF is
            // refused (the RFC: invalid, or a space), not kept in the line.
            if byte == b'\n' {
                if prev_byte_was_cr {
                    buf.pop(); // removing the '\r'
                }
                if header {
                    for b in buf.iter_mut().filter(|b| !b.is_ascii()) {
                        *b = b'?';
                    }
                }
                return AsciiString::from_ascii(buf).map_err(|_| {
                    IoError::new(
                        ErrorKind::InvalidInput,
                        "the request line holds a byte that is not ASCII; percent-encode the URL",
                    )
                });
            }
            if prev_byte_was_cr {
                return Err(IoError::new(
                    ErrorKind::InvalidInput,
                    "a CR not followed by LF in the request head; end each line with CR LF",
                ));
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let mut deadline = None;
        self.head_only = false;
        // simplenn patch: the bytes of the head so far, against `MAX_HEAD`.
        let mut head_bytes = 0;
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let mut read_line = |deadline: &mut Option<Instant>| {
                    self.read_next_line(deadline, false).map_err(|e| {
                        match e.kind() {
                            // The line's limit: a URL too long (414, not 400).
                            ErrorKind::InvalidData => ReadError::UriTooLong,
                            _ => ReadError::ReadIoError(e),
                        }
                    })
                };
                // simplenn patch: empty lines before the request line are
                // skipped (RFC 9112, 2.2: a server SHOULD ignore at least
                // one), such as the CR LF some clients send after a POST
                // body; upstream answered them with a 400. A few only: a
                // stream of nothing else is a malformed request line.
                // An empty line begins no request, so the head's deadline
                // starts again after it: a connection idle after one is
                // closed without a word, as after a request's answer.
                let mut line = read_line(&mut deadline)?;
                let mut empty = 0;
                while line.is_empty() && empty < MAX_EMPTY_LINES {
                    empty += 1;
                    deadline = None;
                    line = read_line(&mut deadline)?;
                }
                head_bytes += line.len() + 2;
                self.head_only = line.as_str().trim_start().starts_with("HEAD ");

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self
                        .read_next_line(&mut deadline, true)
                        .map_err(ReadError::ReadIoError)?;

                    if line.is_empty() {
                        break;
                    };
                    // simplenn patch: nor may the headers be without number,
                    // nor their bytes (100 lines of 16 KiB held 1.6 MB a
                    // connection until the head's deadline).
                    if headers.len() >= MAX_HEADERS {
                        return Err(ReadError::WrongHeader(
                            version,
                            "too many headers (over 100)",
                        ));
                    }
                    head_bytes += line.len() + 2;
                    if head_bytes > MAX_HEAD {
                        return Err(ReadError::HeadTooLarge);
                    }
                    // simplenn patch: a line that begins with a space or a
                    // tab continues the last one (obsolete line folding,
                    // which RFC 9112, 5.2, lets a server refuse): upstream
                    // trimmed it into a header of its own.
                    if line.as_str().starts_with([' ', '\t']) {
                        return Err(ReadError::WrongHeader(version, "a header line begins with a space or tab (obsolete line folding); put each header on one line"));
                    }
                    let header: crate::Header = match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => {
                            return Err(ReadError::WrongHeader(
                                version,
                                "malformed header line; send NAME: VALUE",
                            ))
                        }
                    };
                    // simplenn patch: a field name is a token (RFC 9110,
                    // 5.1): upstream took an empty one (`: value`), or one
                    // of other characters.
                    if !is_token(header.field.as_str().as_str()) {
                        return Err(ReadError::WrongHeader(version, "a header name is empty or holds a character a name may not; use letters, digits and !#$%&'*+-.^_`|~"));
                    }
                    // simplenn patch: nor may a value hold a NUL (RFC 9110,
                    // 5.5: reject it, or make it a space); upstream kept it.
                    if header.value.as_str().contains('\0') {
                        return Err(ReadError::WrongHeader(
                            version,
                            "a header value holds a NUL byte; remove it",
                        ));
                    }
                    headers.push(header);
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            // simplenn patch: a client that reset the connection before it
            // was accepted has no peer address; upstream unwrapped and panicked.
            self.remote_addr.as_ref().ok().copied().flatten(),
            data_source,
            writer,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        // simplenn patch: or an answer ended the connection.
        if self.no_more_requests || self.closer.closed() {
            return None;
        }

        loop {
            let mut rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(400, "malformed request line");
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], self.head_only, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::UriTooLong) => {
                    let writer = self.sink.next().unwrap();
                    let message = format!("request line (its URL) over {MAX_LINE} bytes");
                    let response = json_error(414, &message);
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], self.head_only, None)
                        .ok();
                    return None; // the rest of the line is unread
                }

                Err(ReadError::HeadTooLarge) => {
                    let writer = self.sink.next().unwrap();
                    let message = format!(
                        "request head over {MAX_HEAD} bytes; send fewer or shorter headers"
                    );
                    let response = json_error(431, &message);
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], self.head_only, None)
                        .ok();
                    return None; // the rest of the head is unread
                }

                Err(ReadError::WrongHeader(ver, why)) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(400, why);
                    // simplenn patch: a version this server speaks.
                    let ver = match ver {
                        v if v >= (1, 0) && v <= (1, 1) => v,
                        _ => HTTPVersion(1, 1),
                    };
                    response
                        .raw_print(writer, ver, &[], self.head_only, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                // simplenn patch: a socket read timeout is `WouldBlock` on Linux.
                Err(ReadError::ReadIoError(ref err))
                    if matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
                {
                    // request timeout
                    let writer = self.sink.next().unwrap();
                    let response = json_error(408, "request timed out");
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], self.head_only, None)
                        .ok();
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(417, "unsupported Expect header");
                    // simplenn patch: upstream passed `true` (no body), so the
                    // answer's Content-Length promised a body never sent.
                    response
                        .raw_print(writer, ver, &[], self.head_only, None)
                        .ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                // simplenn patch: a header line too long or not ASCII; a
                // small body cut short (`UnexpectedEof`, `src/request.rs`).
                Err(ReadError::ReadIoError(ref err))
                    if matches!(
                        err.kind(),
                        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof
                    ) =>
                {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(400, &err.to_string());
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], self.head_only, None)
                        .ok();
                    return None;
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // simplenn patch: the previous answer ended the connection while
            // this was read (what was left of its body): not a request.
            if self.closer.closed() {
                return None;
            }

            // checking HTTP version
            // simplenn patch: nor below 1.0 (`HTTP/0.9` has no version in
            // its request line, so such a line is not HTTP/0.9): upstream
            // answered `HTTP/0.9 200`.
            if *rq.http_version() > (1, 1) || *rq.http_version() < (1, 0) {
                // simplenn patch: upstream wrote through a second writer,
                // which waits for `rq`'s own to be dropped: a deadlock that
                // left the client and this thread waiting for ever. Answer
                // through `rq`, then close (the client speaks another HTTP).
                let response =
                    json_error(505, "this server only supports HTTP versions 1.0 and 1.1");
                let mut writer = rq.into_writer();
                response
                    .raw_print(&mut writer, HTTPVersion(1, 1), &[], self.head_only, None)
                    .ok();
                writer.flush().ok();
                return None;
            }

            // updating the status of the connection
            // simplenn patch: every Connection header's options (RFC 9110
            // 5.3: several lines are one list); upstream read the first
            // only, and served on after a second's `close`.
            let connection_header: Vec<&str> = rq
                .headers()
                .iter()
                .filter(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str())
                .collect();

            let lowercase = (!connection_header.is_empty())
                .then(|| connection_header.join(",").to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // simplenn patch: a body whose end cannot be told (chunked, which
            // simplenn refuses unread, or a Content-Length that is not one
            // number) would be read as the next request: close after the
            // answer instead.
            let lengths: Vec<&str> = rq
                .headers()
                .iter()
                .filter(|h| h.field.equiv("Content-Length"))
                .map(|h| h.value.as_str().trim())
                .collect();
            // So is a body longer than simplenn reads (its `serve::MAX_BODY`,
            // 64 KiB): answered 413 unread, its bytes were taken for requests.
            if rq.headers().iter().any(|h| h.field.equiv("Transfer-Encoding"))
                // All digits, as simplenn's own reader requires (Rust's
                // parse also takes a leading '+', refused there after the
                // library has read such a body and the next request).
                || lengths.iter().any(|v| {
                    !v.bytes().all(|b| b.is_ascii_digit())
                        || v.parse::<u64>().map_or(true, |n| n > 64 * 1024)
                })
                || lengths.windows(2).any(|w| w[0] != w[1])
            {
                self.no_more_requests = true;
            }

            // simplenn patch: say so in the answer.
            rq.set_closer(Some(self.closer.clone()));
            if self.no_more_requests {
                rq.set_connection("close");
            } else if *rq.http_version() == HTTPVersion(1, 0) {
                rq.set_connection("keep-alive");
            }

            // returning the request
            return Some(rq);
        }
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    // simplenn patch: any `HTTP/D.D` (RFC 9112, 2.3), so that a version
    // past 1.1 (`HTTP/1.2`) gets its 505, not a 400 for a malformed line.
    let (major, minor) = match version.strip_prefix("HTTP/").map(str::as_bytes) {
        Some(&[a, b'.', b]) if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0', b - b'0'),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());
    // simplenn patch: three parts, no more (upstream ignored the rest).
    if parts.next().is_some() {
        return Err(ReadError::WrongRequestLine);
    }

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}

/// simplenn patch: the longest header line and the most headers a request
/// may have.
const MAX_LINE: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;
/// simplenn patch: the most bytes a request's head (its request line and
/// headers) may take in all.
const MAX_HEAD: usize = 64 * 1024;

/// simplenn patch: whether `name` is a token (RFC 9110, 5.6.2), as a
/// header's field name must be.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// simplenn patch: empty lines skipped before a request line.
const MAX_EMPTY_LINES: usize = 8;
/// simplenn patch: the longest a request's head may take to arrive, from
/// its first byte.
pub(crate) const HEAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// simplenn patch: tiny_http's own error answers carry a JSON body, as the
/// application's do.
fn json_error(status: u16, message: &str) -> crate::Response<std::io::Cursor<Vec<u8>>> {
    let body = format!(
        "{{\"error\":\"{}\"}}",
        message.replace('\\', "\\\\").replace('"', "\\\"")
    );
    // Every one of these answers closes its connection.
    crate::Response::from_string(body)
        .with_status_code(crate::StatusCode(status))
        .with_connection("close")
        .with_header(
            "Content-Type: application/json"
                .parse::<crate::Header>()
                .expect("a valid header"),
        )
}
