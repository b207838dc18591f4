//! The host calls Warden makes, each returning a `Result` — never panicking.
//!
//! The proxy-wasm SDK's own wrappers panic on any status they do not expect (and on header values
//! that are not UTF-8), and a panic kills the worker's VM (DESIGN §4). This module declares the few
//! ABI imports Warden needs and maps every status to a value. It is the crate's only `unsafe` code:
//! each block passes pointers to live Rust buffers, and adopts host-allocated buffers (allocated
//! through the SDK's exported `proxy_on_memory_allocate`, i.e. this module's allocator).

#![allow(unsafe_code, clashing_extern_declarations)]

use crate::proxy_abi::{decode_pairs, encode_pairs, encode_path};
use std::ptr::{null, null_mut};

/// A non-OK proxy-wasm status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
/// Status of a shared-data write whose CAS token no longer matches.
pub(crate) const CAS_MISMATCH: u32 = 8;

/// Header maps.
#[derive(Clone, Copy)]
#[repr(u32)]
#[allow(clippy::enum_variant_names)]
pub enum Map {
    RequestHeaders = 0,
    ResponseHeaders = 2,
    HttpCallResponseHeaders = 6,
}

/// Byte buffers.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    RequestBody = 0,
    ResponseBody = 1,
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(buffer_type: u32, start: usize, size: usize, data: *const u8, data_size: usize) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(path_data: *const u8, path_size: usize, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_done() -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

fn status(code: u32) -> Result<(), HostError> {
    if code == OK {
        Ok(())
    } else {
        Err(HostError(code))
    }
}

/// Takes ownership of a buffer the host allocated for us (null → empty).
fn adopt(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: the host allocated `size` bytes at `data` through this module's allocator and
        // passed ownership to us.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

/// Writes a log line; failures are ignored (there is nowhere else to report them).
pub fn log(level: u32, message: &str) {
    // SAFETY: pointer and length of a live string.
    unsafe {
        proxy_log(level, message.as_ptr(), message.len());
    }
}

/// The log level Envoy applies to this plugin (0 trace … 5 critical).
pub fn log_level() -> Result<u32, HostError> {
    let mut level: u32 = 0;
    // SAFETY: pointer to a live u32.
    status(unsafe { proxy_get_log_level(&mut level) })?;
    Ok(level)
}

/// Wall-clock time, seconds since the epoch.
pub fn now_seconds() -> Result<f64, HostError> {
    let mut nanos: u64 = 0;
    // SAFETY: pointer to a live u64.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos as f64 / 1e9)
}

/// Wall-clock time in milliseconds since the epoch, for timestamps (audit records, the outbox);
/// 0 if the host cannot tell, which no decision depends on.
pub fn now_millis() -> u64 {
    let mut nanos: u64 = 0;
    // SAFETY: pointer to a live u64.
    match status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) }) {
        Ok(()) => nanos / 1_000_000,
        Err(_) => 0,
    }
}

/// Reads `max_size` bytes of a buffer from `start`.
pub fn get_buffer(buffer: Buffer, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: out-pointers to live locals.
    let code = unsafe { proxy_get_buffer_bytes(buffer as u32, start, max_size, &mut data, &mut size) };
    match code {
        OK => Ok(adopt(data, size)),
        NOT_FOUND => Ok(Vec::new()),
        other => Err(HostError(other)),
    }
}

/// Replaces `size` bytes of a buffer from `start` with `bytes`.
pub fn set_buffer(buffer: Buffer, start: usize, size: usize, bytes: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live slice.
    status(unsafe { proxy_set_buffer_bytes(buffer as u32, start, size, bytes.as_ptr(), bytes.len()) })
}

/// The `:status` of the answer to an HTTP callout (`None` when it has none or it is not a number).
pub fn call_response_status() -> Option<u16> {
    let headers = get_headers(Map::HttpCallResponseHeaders).ok()?;
    headers.iter().find(|(name, _)| name == ":status").and_then(|(_, value)| value.parse().ok())
}

/// All headers of a map, in order, names as the host gives them (lower-case for HTTP/2-style maps).
pub fn get_headers(map: Map) -> Result<Vec<(String, String)>, HostError> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: out-pointers to live locals.
    status(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    decode_pairs(&adopt(data, size)).ok_or(HostError(u32::MAX))
}

/// Removes every value of a header.
pub fn remove_header(map: Map, name: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live string.
    status(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// Sets a header, replacing every existing value.
pub fn set_header(map: Map, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live strings.
    status(unsafe {
        proxy_replace_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

/// Reads a property; `Ok(None)` when it does not exist.
pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let encoded = encode_path(path);
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: pointer and length of a live buffer; out-pointers to live locals.
    let code = unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    match code {
        OK => Ok(Some(adopt(data, size))),
        NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// Sets a property of the stream. Envoy keeps it as filter state `wasm.<path>`, which an access
/// log prints with `%FILTER_STATE(wasm.<path>:PLAIN)%`.
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let encoded = encode_path(path);
    // SAFETY: pointers and lengths of live buffers.
    status(unsafe { proxy_set_property(encoded.as_ptr(), encoded.len(), value.as_ptr(), value.len()) })
}

/// Sends a local reply instead of forwarding the request.
pub fn send_reply(status_code: u16, headers: &[(String, String)], body: &str) -> Result<(), HostError> {
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let encoded = encode_pairs(&pairs);
    let details = "warden";
    // SAFETY: pointers and lengths of live buffers.
    status(unsafe {
        proxy_send_local_response(
            u32::from(status_code),
            details.as_ptr(),
            details.len(),
            if body.is_empty() { null() } else { body.as_ptr() },
            body.len(),
            encoded.as_ptr(),
            encoded.len(),
            -1,
        )
    })
}

/// Tells the host a root context whose `on_done` returned `false` has finished its shutdown work.
pub fn done() -> Result<(), HostError> {
    // SAFETY: no arguments.
    status(unsafe { proxy_done() })
}

/// Asks for `on_tick` every `period_ms` milliseconds (0 stops it).
pub fn set_tick_period(period_ms: u32) -> Result<(), HostError> {
    // SAFETY: a plain value.
    status(unsafe { proxy_set_tick_period_milliseconds(period_ms) })
}

/// A shared-data value (shared by every worker VM) and its CAS token; `Ok(None)` when unset.
pub fn get_shared(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: pointer and length of a live string; out-pointers to live locals.
    let code = unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match code {
        OK => Ok(Some((adopt(data, size), cas))),
        NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// Sets a shared-data value if its CAS token is still `cas` (0: unconditionally).
pub fn set_shared(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live buffers.
    status(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Creates a shared counter at 0 unless it exists. The root context on Envoy's main thread
/// configures first, before any worker serves, so later calls from the workers find it.
pub fn init_shared_counter(key: &str) -> Result<(), HostError> {
    match get_shared(key)? {
        Some(_) => Ok(()),
        None => set_shared(key, &0u64.to_le_bytes(), 0),
    }
}

/// Adds one to a shared counter made by [`init_shared_counter`] and returns the new value: one
/// sequence for every worker (compare-and-swap, retried on contention).
pub fn next_shared_counter(key: &str) -> Result<u64, HostError> {
    for _ in 0..1000 {
        let (bytes, cas) = get_shared(key)?.ok_or(HostError(NOT_FOUND))?;
        let current = <[u8; 8]>::try_from(bytes.as_slice()).map(u64::from_le_bytes).map_err(|_| HostError(u32::MAX))?;
        match set_shared(key, &(current + 1).to_le_bytes(), cas) {
            Ok(()) => return Ok(current + 1),
            Err(HostError(CAS_MISMATCH)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(HostError(CAS_MISMATCH))
}

/// Resumes a request paused in a request callback (stream type 0: the HTTP request).
pub fn continue_request() -> Result<(), HostError> {
    // SAFETY: a plain value.
    status(unsafe { proxy_continue_stream(0) })
}

/// Resumes a response paused in a response callback (stream type 1: the HTTP response).
pub fn continue_response() -> Result<(), HostError> {
    // SAFETY: a plain value.
    status(unsafe { proxy_continue_stream(1) })
}

/// Resets the HTTP stream (stream type 1: the response) once the current callback returns:
/// Envoy closes the upstream request, so generation stops, and the client's connection (what
/// was already passed on is flushed first). Bytes handed back by the current callback are
/// dropped, so call it only in a callback after the one that passed the last bytes.
pub fn close_response_stream() -> Result<(), HostError> {
    // SAFETY: a plain value.
    status(unsafe { proxy_close_stream(1) })
}

/// Sends an HTTP request to an Envoy cluster; the answer arrives in `on_http_call_response`
/// with the returned token.
///
/// This one goes through the SDK: the SDK routes the answer to the calling context only for
/// callouts it registered itself. Its wrapper returns `BadArgument` (unknown cluster, bad
/// headers) and `InternalFailure` as errors — the statuses Envoy's `proxy_http_call` returns.
pub fn dispatch_http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<u32, HostError> {
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        Some(body),
        Vec::new(),
        std::time::Duration::from_millis(timeout_ms),
    )
    .map_err(|status| HostError(status as u32))
}

/// Where a `warden serve` endpoint is, as the glue's background calls (audit records, lease
/// asks) reach it.
pub struct Endpoint<'a> {
    /// Envoy cluster.
    pub cluster: &'a str,
    /// `:authority`.
    pub authority: &'a str,
    /// `:path`.
    pub path: &'a str,
    /// The gateway's bearer token.
    pub token: &'a crate::core::secret::Secret,
}

/// `POST`s `body` (of `content_type`) to `endpoint` with the bearer token, through
/// [`dispatch_http_call`].
pub fn post(endpoint: &Endpoint, content_type: &str, body: &[u8], timeout_ms: u64) -> Result<u32, HostError> {
    let authorization = format!("Bearer {}", endpoint.token.expose());
    let headers = [
        (":method", "POST"),
        (":path", endpoint.path),
        (":authority", endpoint.authority),
        ("content-type", content_type),
        ("authorization", authorization.as_str()),
    ];
    dispatch_http_call(endpoint.cluster, &headers, body, timeout_ms)
}

/// `GET`s `endpoint` with the bearer token, through [`dispatch_http_call`].
pub fn get(endpoint: &Endpoint, timeout_ms: u64) -> Result<u32, HostError> {
    let authorization = format!("Bearer {}", endpoint.token.expose());
    let headers = [
        (":method", "GET"),
        (":path", endpoint.path),
        (":authority", endpoint.authority),
        ("authorization", authorization.as_str()),
    ];
    dispatch_http_call(endpoint.cluster, &headers, &[], timeout_ms)
}

/// Defines a counter (Envoy shows it as `wasmcustom.<name>`) and returns its id.
pub fn define_counter(name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: pointer and length of a live string; out-pointer to a live local.
    status(unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Defines a gauge (shared by every worker VM: each adds and subtracts its own part).
pub fn define_gauge(name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: pointer and length of a live string; out-pointer to a live local.
    status(unsafe { proxy_define_metric(1, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds one to a counter; a failure is ignored (metrics never change a decision).
pub fn increment(metric_id: u32) {
    add(metric_id, 1);
}

/// Adds `n` to a counter; a failure is ignored.
pub fn add(metric_id: u32, n: i64) {
    // SAFETY: plain values.
    unsafe {
        proxy_increment_metric(metric_id, n);
    }
}

/// Failures of a background call, reported at most once a minute with how many happened.
#[derive(Debug, Default)]
pub struct FailureLog {
    unlogged: u64,
    last_log_ms: u64,
}

impl FailureLog {
    /// Least time between two reports, in milliseconds.
    const EVERY_MS: u64 = 60_000;

    /// Notes a failure at `now_ms`; `Some(count)` of failures since the last report when one is
    /// due now.
    pub fn note(&mut self, now_ms: u64) -> Option<u64> {
        self.unlogged = self.unlogged.saturating_add(1);
        if self.last_log_ms != 0 && now_ms.saturating_sub(self.last_log_ms) < Self::EVERY_MS {
            return None;
        }
        self.last_log_ms = now_ms.max(1);
        Some(std::mem::take(&mut self.unlogged))
    }
}
