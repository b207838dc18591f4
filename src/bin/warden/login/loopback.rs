//! The loopback redirect of a browser sign-in (RFC 8252 §7.3): `warden login` listens on
//! `127.0.0.1:<random port>` and the service sends the browser to
//! `http://127.0.0.1:<port>/callback?code=…&state=…` once the user signed in.
//!
//! Algorithm: accept connections one at a time until the deadline (5 minutes by default). Read at
//! most 8 KiB of request head with a short per-connection timeout (a silent or slow client cannot
//! hold the listener), parse only the request line, and answer every connection with a small static
//! page (nothing from the request is reflected in it):
//! - not `GET /callback?…`, a malformed request, or a repeated parameter → 404/400, keep waiting;
//! - a `state` that is missing or not this sign-in's (another tab, a forged request) → 400, keep
//!   waiting: a stray request can neither finish nor abort the sign-in;
//! - the right `state` with `error=…` → the sign-in failed (the service refused it);
//! - the right `state` with a `code` and an RFC 9207 `iss` naming another issuer than the
//!   service's → the sign-in failed (a mix-up: the code is not redeemed);
//! - the right `state` with a `code` → done.
//!
//! Limits: one sign-in per listener; IPv4 loopback only (RFC 8252 recommends the literal IP over
//! `localhost`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::pkce::same_secret;

/// Longest request head read from the browser.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long one connection may take to send its request line.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the listener checks for a connection or the deadline.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The redirect path.
pub const CALLBACK_PATH: &str = "/callback";

/// The page shown when the sign-in is complete.
const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Warden</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>Signed in to Warden</h1>\
<p>You can close this tab and return to the terminal.</p>";
/// The page shown when the service refused the sign-in.
const FAILED_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Warden</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>Sign-in failed</h1>\
<p>The terminal running <code>warden login</code> says why.</p>";
/// The page for a redirect that is not this sign-in's.
const STRAY_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Warden</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>Not this sign-in</h1>\
<p>This answer does not belong to the <code>warden login</code> waiting here.</p>";

/// The parameters of a redirect to `/callback`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The state echoed back.
    pub state: Option<String>,
    /// RFC 6749 §4.1.2.1 error code.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
    /// RFC 9207 issuer identifier, when the service sends one.
    pub iss: Option<String>,
}

/// What a single request to the listener is.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A `GET /callback?…` with its parameters.
    Callback(Callback),
    /// Anything else (`/favicon.ico`, `POST`, …): answered 404.
    Other,
    /// Unparsable: answered 400.
    Malformed,
}

/// How a sign-in ended at the listener.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The right state and a code.
    Code {
        /// The authorization code.
        code: String,
    },
    /// The right state and a code, but from another issuer (RFC 9207 mix-up).
    WrongIssuer,
    /// The right state and an error from the service.
    Refused {
        /// The error code.
        error: String,
        /// Its description, if any.
        description: Option<String>,
    },
    /// Nobody came back before the deadline.
    TimedOut,
}

/// Parses the head of one HTTP request (only the request line matters).
pub fn parse_request(head: &[u8]) -> Request {
    let line_end = head.windows(2).position(|w| w == b"\r\n").or_else(|| head.iter().position(|&b| b == b'\n'));
    let Some(line) = line_end.and_then(|end| head.get(..end)) else { return Request::Malformed };
    let Ok(line) = std::str::from_utf8(line) else { return Request::Malformed };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Malformed;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Malformed;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" || path != CALLBACK_PATH {
        return Request::Other;
    }
    let mut callback = Callback::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut callback.code,
            "state" => &mut callback.state,
            "error" => &mut callback.error,
            "error_description" => &mut callback.error_description,
            "iss" => &mut callback.iss,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Request::Malformed;
        }
    }
    Request::Callback(callback)
}

/// What the listener does with one request, given this sign-in's `state` and the service's
/// `issuer`: the status and page to answer, and the outcome if the sign-in is over.
pub fn judge(request: Request, state: &str, issuer: &str) -> (u16, &'static str, Option<Outcome>) {
    let callback = match request {
        Request::Callback(callback) => callback,
        Request::Other => return (404, STRAY_PAGE, None),
        Request::Malformed => return (400, STRAY_PAGE, None),
    };
    if !callback.state.as_deref().is_some_and(|presented| same_secret(presented, state)) {
        return (400, STRAY_PAGE, None);
    }
    match (callback.code, callback.error) {
        (_, Some(error)) => {
            (200, FAILED_PAGE, Some(Outcome::Refused { error, description: callback.error_description }))
        }
        (Some(_), None) if callback.iss.as_deref().is_some_and(|iss| iss != issuer) => {
            (200, FAILED_PAGE, Some(Outcome::WrongIssuer))
        }
        (Some(code), None) if !code.is_empty() => (200, DONE_PAGE, Some(Outcome::Code { code })),
        _ => (400, STRAY_PAGE, None),
    }
}

/// A listener bound to a random loopback port.
#[derive(Debug)]
pub struct Loopback {
    listener: TcpListener,
    port: u16,
}

impl Loopback {
    /// Binds `127.0.0.1:0`.
    pub fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        Ok(Self { listener, port })
    }

    /// The redirect URI to register with the authorization request.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Serves requests until one ends the sign-in with `state` (from `issuer`), or until
    /// `timeout` passes.
    pub fn wait(&self, state: &str, issuer: &str, timeout: Duration) -> std::io::Result<Outcome> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(outcome) = serve_one(stream, state, issuer) {
                        return Ok(outcome);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Ok(Outcome::TimedOut);
                    }
                    std::thread::sleep(POLL_INTERVAL);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads one request, answers it, returns the outcome if it ends the sign-in. I/O failures on
/// one connection (a client that hung up) only drop that connection.
fn serve_one(mut stream: TcpStream, state: &str, issuer: &str) -> Option<Outcome> {
    let configured = stream.set_nonblocking(false).is_ok()
        && stream.set_read_timeout(Some(CONNECTION_TIMEOUT)).is_ok()
        && stream.set_write_timeout(Some(CONNECTION_TIMEOUT)).is_ok();
    if !configured {
        return None;
    }
    let head = read_head(&mut stream);
    let (status, page, outcome) = judge(parse_request(&head), state, issuer);
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(answer.as_bytes()).and_then(|()| stream.flush());
    outcome
}

/// Reads until the end of the request head, [`MAX_HEAD_BYTES`], EOF or the timeout.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while head.len() < MAX_HEAD_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(buffer.get(..n).unwrap_or_default()),
        }
    }
    head.truncate(MAX_HEAD_BYTES);
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "http://127.0.0.1:8787";

    fn get(target: &str) -> Request {
        parse_request(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
    }

    #[test]
    fn a_callback_with_the_right_state_yields_its_code() {
        let request = get("/callback?code=abc%2Bdef&state=s1&iss=http%3A%2F%2F127.0.0.1%3A8787");
        let (status, page, outcome) = judge(request, "s1", ISSUER);
        assert_eq!((status, page), (200, DONE_PAGE));
        assert_eq!(outcome, Some(Outcome::Code { code: "abc+def".to_string() }));
        let (status, page, outcome) = judge(get("/callback?code=c&state=s1"), "s1", ISSUER);
        assert_eq!((status, page, outcome), (200, DONE_PAGE, Some(Outcome::Code { code: "c".to_string() })));
    }

    #[test]
    fn a_code_from_another_issuer_ends_the_sign_in_as_a_mix_up() {
        let (status, page, outcome) =
            judge(get("/callback?code=c&state=s1&iss=https%3A%2F%2Fevil.example"), "s1", ISSUER);
        assert_eq!((status, page, outcome), (200, FAILED_PAGE, Some(Outcome::WrongIssuer)));
    }

    #[test]
    fn a_wrong_or_missing_state_neither_finishes_nor_aborts_the_sign_in() {
        for target in [
            "/callback?code=c&state=s2",
            "/callback?code=c&state=s",
            "/callback?code=c&state=s11",
            "/callback?code=c",
            "/callback?error=access_denied&state=nope",
            "/callback?error=access_denied",
        ] {
            let (status, _, outcome) = judge(get(target), "s1", ISSUER);
            assert_eq!((status, outcome), (400, None), "{target}");
        }
    }

    #[test]
    fn an_error_with_the_right_state_ends_the_sign_in_as_refused() {
        let (status, page, outcome) =
            judge(get("/callback?error=access_denied&error_description=no+role&state=s1"), "s1", ISSUER);
        assert_eq!((status, page), (200, FAILED_PAGE));
        assert_eq!(
            outcome,
            Some(Outcome::Refused { error: "access_denied".to_string(), description: Some("no role".to_string()) })
        );
    }

    #[test]
    fn hostile_requests_are_answered_and_ignored() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (b"GET /favicon.ico HTTP/1.1\r\n\r\n".to_vec(), 404),
            (b"POST /callback?code=c&state=s1 HTTP/1.1\r\n\r\n".to_vec(), 404),
            (b"GET /callback/../callback?code=c&state=s1 HTTP/1.1\r\n\r\n".to_vec(), 404),
            (b"GET /callback?code=c&state=s1&state=s1 HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET /callback?code=a&code=b&state=s1 HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET /callback?code=&state=s1 HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET  /callback?code=c&state=s1 HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET /callback?code=c&state=s1 SPDY/3\r\n\r\n".to_vec(), 400),
            (b"GET /callback?code=c&state=s1".to_vec(), 400),
            (b"\xff\xfe /callback HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"".to_vec(), 400),
            ([b"GET /callback?state=s1&code=".as_slice(), &[b'x'; 20_000], b" HTTP/1.1\r\n\r\n"].concat(), 400),
        ];
        for (head, want) in cases {
            let mut truncated = head.clone();
            truncated.truncate(MAX_HEAD_BYTES);
            let (status, page, outcome) = judge(parse_request(&truncated), "s1", ISSUER);
            assert_eq!((status, outcome), (want, None), "{:?}", String::from_utf8_lossy(&head));
            assert!(!page.contains("s1"));
        }
    }

    #[test]
    fn the_listener_ignores_strays_and_returns_the_real_redirect() {
        let loopback = Loopback::bind().unwrap();
        let uri = loopback.redirect_uri();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"), "{uri}");
        let port = loopback.port;
        let client = std::thread::spawn(move || {
            let send = |raw: &[u8]| {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.write_all(raw).unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                answer
            };
            let stray = send(b"GET /callback?code=evil&state=forged HTTP/1.1\r\n\r\n");
            let silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
            drop(silent);
            let done = send(b"GET /callback?code=good&state=s1 HTTP/1.1\r\nHost: x\r\n\r\n");
            (stray, done)
        });
        let outcome = loopback.wait("s1", ISSUER, Duration::from_secs(60)).unwrap();
        assert_eq!(outcome, Outcome::Code { code: "good".to_string() });
        let (stray, done) = client.join().unwrap();
        assert!(stray.starts_with("HTTP/1.1 400"), "{stray}");
        assert!(done.starts_with("HTTP/1.1 200") && done.contains("close this tab"), "{done}");
    }

    proptest::proptest! {
        #[test]
        fn no_request_ends_the_sign_in_without_its_state(head in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let (status, _, outcome) = judge(parse_request(&head), "the-real-state", ISSUER);
            proptest::prop_assert!(outcome.is_none());
            proptest::prop_assert!(matches!(status, 400 | 404));
        }

        #[test]
        fn a_callback_ends_the_sign_in_only_with_its_exact_state(state in "[A-Za-z0-9_-]{0,50}", code in "[A-Za-z0-9]{1,20}") {
            let request = get(&format!("/callback?code={code}&state={state}"));
            let (_, _, outcome) = judge(request, "s1", ISSUER);
            proptest::prop_assert_eq!(outcome.is_some(), state == "s1");
        }
    }

    #[test]
    fn the_listener_gives_up_at_its_deadline() {
        let loopback = Loopback::bind().unwrap();
        assert_eq!(loopback.wait("s1", ISSUER, Duration::ZERO).unwrap(), Outcome::TimedOut);
    }
}
