use std::io::Error as IoError;
use std::io::{self, Cursor, ErrorKind, Read, Write};

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use std::sync::mpsc::Sender;

use crate::util::{EqualReader, FusedReader};
use crate::{HTTPVersion, Header, Method, Response, StatusCode};
use chunked_transfer::Decoder;

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// # Pipelining
///
/// simplenn patch: a client may send several requests in a row without
/// waiting for the answers (*pipelining*), but its connection hands them
/// out one at a time: the next is read only once the last one's answer is
/// written (or handed out by `into_writer` or `upgrade`, whose writer the
/// next answer then waits for). (Upstream handed them all out at once and
/// reordered the answers.)
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `into_writer` or `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client.
/// This means that if your code fails during the handling of a request, this "internal server
/// error" response will automatically be sent during the stack unwinding.
///
/// # Testing
///
/// If you want to build fake requests to test your server, use [`TestRequest`](crate::test::TestRequest).
pub struct Request {
    // where to read the body from
    data_reader: Option<Box<dyn Read + Send + 'static>>,

    // if this writer is empty, then the request has been answered
    response_writer: Option<Box<dyn Write + Send + 'static>>,

    remote_addr: Option<SocketAddr>,

    // true if HTTPS, false if HTTP
    secure: bool,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,

    // true if a `100 Continue` response must be sent when `as_reader()` is called
    must_send_continue: bool,

    // simplenn patch: the `Connection` header the answer carries, set by
    // the client connection once it knows whether another request follows.
    connection: Option<&'static str>,

    // simplenn patch: set where the answer must end the connection.
    close: bool,
    closer: Option<std::sync::Arc<crate::util::Closer>>,

    // simplenn patch: where the answer goes to be written: the thread of
    // the connection the request came on (see `Handoff`).
    handoff: Option<Sender<Handoff>>,
}

/// simplenn patch: an answer, ready to be written by the thread of the
/// connection it goes to. Upstream wrote each answer on the thread that
/// called `respond`, so a client that sent requests and read no answers
/// held the application's threads, one per request, each for the socket's
/// write timeout: one connection froze the page for as long as it stayed
/// open. The connection's thread now writes its answers, and reads the
/// connection's next request only once the last answer is written.
pub(crate) type Handoff = Box<dyn FnOnce() + Send + 'static>;

/// simplenn patch: what writing an answer takes, out of its `Request`, so
/// that another thread can write it.
struct Answer {
    writer: Box<dyn Write + Send + 'static>,
    head_only: bool,
    http_version: HTTPVersion,
    headers: Vec<Header>,
    connection: Option<&'static str>,
    close: bool,
    closer: Option<std::sync::Arc<crate::util::Closer>>,
}

/// simplenn patch: the longest an answer may take to be sent. Each write
/// times out after `SOCKET_TIMEOUT` (10 s) without progress, but a client
/// that took a few bytes now and then passed every write, and held its
/// connection for as long as it liked.
const ANSWER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

impl Answer {
    fn write<R: Read>(mut self, response: Response<R>) -> Result<(), IoError> {
        let response = match self.connection {
            Some(value) => response.with_connection(value),
            None => response,
        };
        let mut writer = Deadline {
            inner: self.writer.by_ref(),
            deadline: std::time::Instant::now() + ANSWER_DEADLINE,
            closer: self.closer.as_deref(),
            shortened: false,
        };
        let sent = response
            .raw_print(
                &mut writer,
                self.http_version.clone(),
                &self.headers,
                self.head_only,
                None,
            )
            .and_then(|()| writer.flush());
        if writer.shortened && sent.is_ok() {
            if let Some(closer) = &self.closer {
                closer.set_write_timeout(crate::SOCKET_TIMEOUT);
            }
        }
        // An answer marked to end the connection (`close_connection`)
        // ends it whether or not it went out; so does any answer that could
        // not be sent (the client gone, or reading nothing for the socket's
        // write timeout), since its next answer would wait as long again,
        // and then without the lingering close (`Closer::fail`). Otherwise
        // the connection stays open.
        if let Some(closer) = &self.closer {
            if sent.is_err() {
                closer.fail();
            } else if self.close {
                closer.close();
            }
        }
        Request::ignore_client_closing_errors(sent)
    }
}

/// Error that can happen when building a `Request` object.
#[derive(Debug)]
pub enum RequestCreationError {
    /// The client sent an `Expect` header that was not recognized by tiny-http.
    ExpectationFailed,

    /// Error while reading data from the socket during the creation of the `Request`.
    CreationIoError(IoError),
}

impl From<IoError> for RequestCreationError {
    fn from(err: IoError) -> RequestCreationError {
        RequestCreationError::CreationIoError(err)
    }
}

/// Builds a new request.
///
/// After the request line and headers have been read from the socket, a new `Request` object
/// is built.
///
/// You must pass a `Read` that will allow the `Request` object to read from the incoming data.
/// It is the responsibility of the `Request` to read only the data of the request and not further.
///
/// The `Write` object will be used by the `Request` to write the response.
#[allow(clippy::too_many_arguments)]
pub fn new_request<R, W>(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    mut source_data: R,
    writer: W,
) -> Result<Request, RequestCreationError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    // finding the transfer-encoding header
    let transfer_encoding = headers
        .iter()
        .find(|h: &&Header| h.field.equiv("Transfer-Encoding"))
        .map(|h| h.value.clone());

    // finding the content-length header
    let content_length = if transfer_encoding.is_some() {
        // if transfer-encoding is specified, the Content-Length
        // header must be ignored (RFC2616 #4.4)
        None
    } else {
        headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Content-Length"))
            .and_then(|h| FromStr::from_str(h.value.as_str()).ok())
    };

    // true if the client sent a `Expect: 100-continue` header
    let expects_continue = {
        match headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Expect"))
            .map(|h| h.value.as_str())
        {
            None => false,
            // simplenn patch: not to an HTTP/1.0 client, which RFC 9110
            // (10.1.1) says a server MUST ignore it from, nor for an empty
            // body: upstream sent both a `100 Continue`.
            Some(v) if v.eq_ignore_ascii_case("100-continue") => {
                version >= (1, 1) && content_length != Some(0)
            }
            _ => return Err(RequestCreationError::ExpectationFailed),
        }
    };

    // simplenn patch: a `Connection: upgrade` header (which `curl --http2`
    // sends on http://) no longer makes the body the rest of the
    // connection: simplenn switches no protocol, so the body is framed by
    // its Content-Length as any other. Upstream handed the raw socket on,
    // and a body read to its end then waited out the read timeout (a 408
    // after 10 s), a request sent after it read as part of the body.
    let reader = if let Some(content_length) = content_length {
        if content_length == 0 {
            Box::new(io::empty()) as Box<dyn Read + Send + 'static>
        } else if content_length <= 1024 && !expects_continue {
            // if the content-length is small enough, we just read everything into a buffer

            let mut buffer = vec![0; content_length];
            let mut offset = 0;
            // simplenn patch: upstream waited for as long as each read came
            // within the socket's timeout, so a body trickled a byte at a
            // time held its thread for hours; the head's deadline bounds it
            // (answered 408, and the connection closed).
            let deadline = std::time::Instant::now() + crate::client::HEAD_DEADLINE;

            while offset != content_length {
                if std::time::Instant::now() > deadline {
                    let info = "the request body took too long to arrive";
                    let err = IoError::new(ErrorKind::TimedOut, info);
                    return Err(RequestCreationError::CreationIoError(err));
                }
                let read = source_data.read(&mut buffer[offset..])?;
                if read == 0 {
                    // simplenn patch: the client ended its side before the
                    // body's Content-Length: answered 400 (the client may
                    // still read), where upstream closed without a word.
                    let info = format!("the request body ended after {offset} of its {content_length} bytes; send the whole body");
                    let err = IoError::new(ErrorKind::UnexpectedEof, info);
                    return Err(RequestCreationError::CreationIoError(err));
                }

                offset += read;
            }

            Box::new(Cursor::new(buffer)) as Box<dyn Read + Send + 'static>
        } else {
            let (data_reader, _) = EqualReader::new(source_data, content_length); // TODO:
            Box::new(FusedReader::new(data_reader)) as Box<dyn Read + Send + 'static>
        }
    } else if transfer_encoding.is_some() {
        // if a transfer-encoding was specified, then "chunked" is ALWAYS applied
        // over the message (RFC2616 #3.6)
        Box::new(FusedReader::new(Decoder::new(source_data))) as Box<dyn Read + Send + 'static>
    } else {
        // if we have neither a Content-Length nor a Transfer-Encoding,
        // assuming that we have no data
        // TODO: could also be multipart/byteranges
        Box::new(io::empty()) as Box<dyn Read + Send + 'static>
    };

    Ok(Request {
        data_reader: Some(reader),
        response_writer: Some(Box::new(writer) as Box<dyn Write + Send + 'static>),
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        headers,
        body_length: content_length,
        must_send_continue: expects_continue,
        connection: None,
        close: false,
        closer: None,
        handoff: None,
    })
}

/// simplenn patch: a writer that fails once the answer's deadline has
/// passed, and in the deadline's last `SOCKET_TIMEOUT` shortens the
/// socket's write timeout to what is left, so that no write outlasts it.
struct Deadline<'a> {
    inner: &'a mut (dyn Write + Send + 'static),
    deadline: std::time::Instant,
    closer: Option<&'a crate::util::Closer>,
    shortened: bool,
}

impl Deadline<'_> {
    fn check(&mut self) -> Result<(), IoError> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let why = "the client took too long to read the answer";
            return Err(IoError::new(ErrorKind::TimedOut, why));
        }
        if left < crate::SOCKET_TIMEOUT {
            if let Some(closer) = self.closer {
                closer.set_write_timeout(left);
                self.shortened = true;
            }
        }
        Ok(())
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

impl Request {
    /// simplenn patch: the `Connection` header to answer with.
    pub(crate) fn set_connection(&mut self, value: &'static str) {
        self.connection = Some(value);
    }

    /// simplenn patch: the connection's thread, which writes the answer.
    pub(crate) fn set_handoff(&mut self, handoff: Sender<Handoff>) {
        self.handoff = Some(handoff);
    }

    /// simplenn patch: what ends the connection, for [`Self::close_connection`].
    pub(crate) fn set_closer(&mut self, closer: Option<std::sync::Arc<crate::util::Closer>>) {
        self.closer = closer;
    }

    /// simplenn patch: the answer to this request is the connection's last
    /// (it says `Connection: close`, and the sending side is shut after
    /// it): for a request whose body was left half read, whose remaining
    /// bytes would otherwise be drained, then read as the next request.
    pub fn close_connection(&mut self) {
        self.connection = Some("close");
        self.close = true;
    }

    /// Returns true if the request was made through HTTPS.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes.
    ///
    /// Returns `None` if the length is unknown.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Sends a response with a `Connection: upgrade` header, then turns the `Request` into a `Stream`.
    ///
    /// The main purpose of this function is to support websockets.
    /// If you detect that the request wants to use some kind of protocol upgrade, you can
    ///  call this function to obtain full control of the socket stream.
    ///
    /// If you call this on a non-websocket request, tiny-http will wait until this `Stream` object
    ///  is destroyed before continuing to read or write on the socket. Therefore you should always
    ///  destroy it as soon as possible.
    pub fn upgrade<R: Read>(
        mut self,
        protocol: &str,
        response: Response<R>,
    ) -> Box<dyn ReadWrite + Send> {
        use crate::util::CustomStream;

        response
            .raw_print(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                &self.headers,
                false,
                Some(protocol),
            )
            .ok(); // TODO: unused result

        self.response_writer.as_mut().unwrap().flush().ok(); // TODO: unused result

        // simplenn patch: upstream's notice to the HTTPS connection thread
        // (`NotifyOnDrop`) is gone with that thread's wait: see "Pipelining".
        let stream = CustomStream::new(self.extract_reader_impl(), self.extract_writer_impl());
        Box::new(stream) as Box<dyn ReadWrite + Send>
    }

    /// Allows to read the body of the request.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # extern crate rustc_serialize;
    /// # extern crate tiny_http;
    /// # use rustc_serialize::json::Json;
    /// # use std::io::Read;
    /// # fn get_content_type(_: &tiny_http::Request) -> &'static str { "" }
    /// # fn main() {
    /// # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    /// let mut request = server.recv().unwrap();
    ///
    /// if get_content_type(&request) == "application/json" {
    ///     let mut content = String::new();
    ///     request.as_reader().read_to_string(&mut content).unwrap();
    ///     let json: Json = content.parse().unwrap();
    /// }
    /// # }
    /// ```
    ///
    /// If the client sent a `Expect: 100-continue` header with the request, calling this
    ///  function will send back a `100 Continue` response.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        if self.must_send_continue {
            // simplenn patch: the status line alone. A Response printed one
            // with `Content-Length: 0` and other headers, which RFC 9110
            // (15.2) forbids in a 1xx answer.
            let writer = self.response_writer.as_mut().unwrap();
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok();
            writer.flush().ok();
            self.must_send_continue = false;
        }

        self.data_reader.as_mut().unwrap()
    }

    /// Turns the `Request` into a writer.
    ///
    /// The writer has a raw access to the stream to the user.
    /// This function is useful for things like CGI.
    ///
    /// Note that the connection's next answer is written only once the
    /// `Writer` is dropped (the connection's writers take turns), so drop
    /// it as soon as possible. (simplenn patch: the connection reads its
    /// next request as soon as this is called: see "Pipelining" above.)
    #[inline]
    pub fn into_writer(mut self) -> Box<dyn Write + Send + 'static> {
        self.extract_writer_impl()
    }

    /// Extract the response `Writer` object from the Request, dropping this `Writer` has the same side effects
    /// as the object returned by `into_writer` above.
    ///
    /// This may only be called once on a single request.
    fn extract_writer_impl(&mut self) -> Box<dyn Write + Send + 'static> {
        use std::mem;

        assert!(self.response_writer.is_some());

        let mut writer = None;
        mem::swap(&mut self.response_writer, &mut writer);
        writer.unwrap()
    }

    /// Extract the body `Reader` object from the Request.
    ///
    /// This may only be called once on a single request.
    fn extract_reader_impl(&mut self) -> Box<dyn Read + Send + 'static> {
        use std::mem;

        assert!(self.data_reader.is_some());

        let mut reader = None;
        mem::swap(&mut self.data_reader, &mut reader);
        reader.unwrap()
    }

    /// Sends a response to this request.
    ///
    /// simplenn patch: on a server's connection the response is handed to
    /// that connection's thread, which writes it (see `Handoff`); `Ok` then
    /// says it was handed over, and an error that the connection had ended.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read + Send + 'static,
    {
        self.deliver(response)
    }

    /// simplenn patch: the answer written here, or handed to the
    /// connection's thread.
    fn deliver<R>(&mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read + Send + 'static,
    {
        let answer = Answer {
            writer: self.extract_writer_impl(),
            head_only: self.method == Method::Head,
            http_version: self.http_version.clone(),
            headers: std::mem::take(&mut self.headers),
            connection: self.connection,
            close: self.close,
            closer: self.closer.clone(),
        };
        match self.handoff.take() {
            Some(handoff) => handoff
                .send(Box::new(move || {
                    let _ = answer.write(response);
                }))
                .map_err(|_| IoError::new(ErrorKind::NotConnected, "the connection has ended")),
            None => answer.write(response),
        }
    }

    fn ignore_client_closing_errors(result: io::Result<()>) -> io::Result<()> {
        result.or_else(|err| match err.kind() {
            ErrorKind::BrokenPipe => Ok(()),
            ErrorKind::ConnectionAborted => Ok(()),
            ErrorKind::ConnectionRefused => Ok(()),
            ErrorKind::ConnectionReset => Ok(()),
            _ => Err(err),
        })
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.response_writer.is_some() {
            let _ = self.deliver(Response::empty(500)); // ignoring any potential error
        }
    }
}

/// Dummy trait that regroups the `Read` and `Write` traits.
///
/// Automatically implemented on all types that implement both `Read` and `Write`.
pub trait ReadWrite: Read + Write {}
impl<T> ReadWrite for T where T: Read + Write {}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
