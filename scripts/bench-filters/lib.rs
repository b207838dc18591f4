//! Probe filters for `scripts/bench.py`: each does a prefix of what Warden does per request, so
//! the load benchmark can split Warden's cost. The plugin configuration names the mode:
//!
//! - `noop`: every callback returns Continue; the price of a wasm filter being there at all
//!   (a V8 context per request, the callbacks).
//! - `headers`: also copies every request header into the VM, as Warden does.
//! - `buffer`: also holds the request in the headers callback until the whole body arrived
//!   (Envoy buffers it) and copies the body into the VM.
//! - `parse`: also checks that the body is JSON (`serde_json` into `IgnoredAny`: reads every
//!   byte, builds nothing); the least a body policy must do.
//! - `ledger`: `noop` plus the shared-data traffic of Warden's budget check with three budgets:
//!   on the request headers, a read and a compare-and-swap write of a 56-byte value for each of
//!   three keys (admission), and the same again when the exchange ends (settlement, on log): 12
//!   host calls per request. A write that loses a race reads again, as Warden's ledger does, and
//!   counts the retry in the counter `bench_probe.ledger_cas_retries` (Envoy's `/stats`).
//!
//! Any other configuration (Warden's policy, say) is refused, so a probe is never mistaken for
//! the real filter.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Noop,
    Headers,
    Buffer,
    Parse,
    Ledger,
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { mode: Mode::Noop, retries: 0 }) });
}}

struct Root {
    mode: Mode,
    /// The `ledger` mode's CAS-retry counter.
    retries: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.mode = match config.as_slice() {
            b"noop" => Mode::Noop,
            b"headers" => Mode::Headers,
            b"buffer" => Mode::Buffer,
            b"parse" => Mode::Parse,
            b"ledger" => {
                self.retries = hostcalls::define_metric(MetricType::Counter, "bench_probe.ledger_cas_retries")
                    .unwrap_or_default();
                Mode::Ledger
            }
            _ => {
                log::error!("probe filter: configuration must be noop, headers, buffer, parse or ledger");
                return false;
            }
        };
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe { mode: self.mode, retries: self.retries }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe {
    mode: Mode,
    retries: u32,
}

impl Context for Probe {}

/// The keys the `ledger` mode updates: as many as the benchmark's budgets.
const LEDGER_KEYS: [&str; 3] = ["bench.ledger.0", "bench.ledger.1", "bench.ledger.2"];

impl Probe {
    /// One read-modify-CAS-write of each ledger key (retried when another worker won the race).
    fn touch_ledger(&self) {
        for key in LEDGER_KEYS {
            for _ in 0..64 {
                let (value, cas) = self.get_shared_data(key);
                let mut entry = [0u8; 56];
                if let Some(old) = value.as_deref().and_then(|v| v.get(..8)) {
                    entry[..8].copy_from_slice(old);
                }
                let count = u64::from_le_bytes(entry[..8].try_into().unwrap_or_default());
                entry[..8].copy_from_slice(&count.wrapping_add(1).to_le_bytes());
                if self.set_shared_data(key, Some(&entry), cas).is_ok() {
                    break;
                }
                let _ = hostcalls::increment_metric(self.retries, 1);
            }
        }
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.mode == Mode::Ledger {
            self.touch_ledger();
        }
        if matches!(self.mode, Mode::Noop | Mode::Ledger) {
            return Action::Continue;
        }
        let headers = self.get_http_request_headers();
        std::hint::black_box(&headers);
        if self.mode == Mode::Headers || end_of_stream {
            return Action::Continue;
        }
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if matches!(self.mode, Mode::Noop | Mode::Headers | Mode::Ledger) {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        if self.mode == Mode::Parse
            && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err()
        {
            self.send_http_response(
                400,
                vec![("content-type", "text/plain")],
                Some(b"probe: not JSON\n"),
            );
            return Action::Pause;
        }
        std::hint::black_box(&body);
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.mode == Mode::Ledger {
            self.touch_ledger();
        }
    }
}
