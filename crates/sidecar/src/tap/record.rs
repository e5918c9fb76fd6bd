//! What the tap records about one request, and when: the in-flight gauge
//! when its headers arrive; the counter and the three histograms once its
//! response body has been sent (or the exchange was abandoned).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hyper::{HeaderMap, Method, StatusCode};

use super::Settings;
use crate::store::{ExemplarRef, Observer, Op, SeriesId, Store};

/// Requests by method, route and status.
pub const REQUESTS: &str = "http_requests_total";
/// Request latency histogram.
pub const DURATION: &str = "http_request_duration_seconds";
/// Request body size histogram.
pub const REQUEST_SIZE: &str = "http_request_size_bytes";
/// Response body size histogram.
pub const RESPONSE_SIZE: &str = "http_response_size_bytes";
/// Requests being served.
pub const IN_FLIGHT: &str = "http_requests_in_flight";

const REQUESTS_HELP: &str = "HTTP requests through the tap by method, route and status code.";
const DURATION_HELP: &str =
    "Time from a request's headers to the last byte of its response body, through the tap.";
const REQUEST_SIZE_HELP: &str = "Body bytes of HTTP requests through the tap.";
const RESPONSE_SIZE_HELP: &str = "Body bytes of HTTP responses through the tap.";
const IN_FLIGHT_HELP: &str = "HTTP requests the tap is serving now.";

/// The status recorded for a request whose client went away before the
/// response headers were sent (nginx's "client closed request").
pub const CLIENT_CLOSED: &str = "499";

/// The `method` label: the standard methods as they are, anything else
/// `other`, so a client cannot create series at will.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The trace id of a W3C `traceparent` header value
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`), or `None` when
/// the value is not one (upper-case hex, an all-zero id, version `ff`, a
/// version 00 header with more fields).
pub fn trace_id(traceparent: &[u8]) -> Option<[u8; 32]> {
    let lower_hex = |b: &[u8]| {
        b.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    let not_zero = |b: &[u8]| b.iter().any(|c| *c != b'0');
    if traceparent.len() < 55 {
        return None;
    }
    let (version, trace, parent, flags) = (
        &traceparent[..2],
        &traceparent[3..35],
        &traceparent[36..52],
        &traceparent[53..55],
    );
    let dashes = [2, 35, 52].iter().all(|&i| traceparent[i] == b'-');
    let rest_ok = match version {
        b"00" => traceparent.len() == 55,
        // Later versions may append fields after a dash.
        _ => traceparent.len() == 55 || traceparent[55] == b'-',
    };
    let valid = dashes
        && rest_ok
        && lower_hex(version)
        && version != b"ff"
        && lower_hex(trace)
        && not_zero(trace)
        && lower_hex(parent)
        && not_zero(parent)
        && lower_hex(flags);
    valid.then(|| trace.try_into().expect("32 bytes"))
}

/// The state shared by all requests of a tap: where metrics go and the
/// in-flight count.
#[derive(Debug)]
pub struct Meter {
    store: Arc<Store>,
    in_flight: AtomicI64,
}

impl Meter {
    /// A meter writing into `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Meter {
            store,
            in_flight: AtomicI64::new(0),
        }
    }

    /// Moves the in-flight gauge by `delta`. The count changes under the
    /// store's lock, so concurrent changes reach the gauge in order; it is
    /// set rather than added to so an expired series comes back right.
    fn move_in_flight(&self, w: &mut crate::store::Writer<'_>, delta: i64) {
        let now = self.in_flight.fetch_add(delta, Relaxed) + delta;
        let id = SeriesId {
            name: IN_FLIGHT,
            help: IN_FLIGHT_HELP,
            labels: &[],
            ttl: None,
        };
        // A rejection (a StatsD metric of another type took the name) is
        // the store's to count; the tap has nothing better to do.
        let _ = w.update(&id, Op::GaugeSet(now as f64));
    }
}

/// One request being tapped. Dropping it records it.
#[derive(Debug)]
pub struct Exchange {
    meter: Arc<Meter>,
    settings: Arc<Settings>,
    method: &'static str,
    /// Index into the settings' routes; `None` is `other`.
    route: Option<usize>,
    trace_id: Option<[u8; 32]>,
    start: Instant,
    /// `None` until the response headers are known.
    status: Option<StatusCode>,
    /// The request's `Content-Length`, if it had one.
    declared_request_bytes: Option<u64>,
    /// Request body bytes forwarded so far.
    request_bytes: Arc<AtomicU64>,
    response_bytes: u64,
}

impl Exchange {
    /// Starts tapping a request with these headers and a body of
    /// `declared_request_bytes` (from `Content-Length`) if known.
    pub fn begin(
        meter: Arc<Meter>,
        settings: Arc<Settings>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        declared_request_bytes: Option<u64>,
    ) -> Exchange {
        let start = Instant::now();
        meter.move_in_flight(&mut meter.store.writer(start), 1);
        let route = settings.routes.index(path);
        let trace_id = headers
            .get("traceparent")
            .and_then(|v| trace_id(v.as_bytes()));
        Exchange {
            meter,
            settings,
            method: method_label(method),
            route,
            trace_id,
            start,
            status: None,
            declared_request_bytes,
            request_bytes: Arc::new(AtomicU64::new(0)),
            response_bytes: 0,
        }
    }

    /// The counter the request body adds its bytes to.
    pub fn request_bytes(&self) -> Arc<AtomicU64> {
        self.request_bytes.clone()
    }

    /// Sets the status the response carries.
    pub fn respond(&mut self, status: StatusCode) {
        self.status = Some(status);
    }

    /// Counts response body bytes sent.
    pub fn add_response_bytes(&mut self, n: usize) {
        self.response_bytes += n as u64;
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let now = Instant::now();
        let seconds = now.duration_since(self.start).as_secs_f64();
        let route = self.settings.routes.label(self.route);
        let status = self
            .status
            .as_ref()
            .map_or(CLIENT_CLOSED, StatusCode::as_str);
        let labels = [("method", self.method), ("route", route)];
        let id = |name, help| SeriesId {
            name,
            help,
            labels: &labels,
            ttl: None,
        };
        let observe = |value, bounds| Op::Observe {
            value,
            weight: 1,
            observer: Observer::Histogram(bounds),
        };
        let trace_hex = self.trace_id.as_ref().map(|t| {
            // Checked to be lower-case hex when parsed.
            std::str::from_utf8(t).unwrap_or_default()
        });
        let trace_label;
        let exemplar = match trace_hex {
            Some(hex) => {
                trace_label = [("trace_id", hex)];
                Some(ExemplarRef {
                    labels: &trace_label,
                    timestamp: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                })
            }
            None => None,
        };

        // Rejections (the series cap, a name taken by another type) are
        // counted by the store; nothing else is to be done about them here.
        let mut w = self.meter.store.writer(now);
        self.meter.move_in_flight(&mut w, -1);
        let _ = w.update(
            &SeriesId {
                name: REQUESTS,
                help: REQUESTS_HELP,
                labels: &[
                    ("method", self.method),
                    ("route", route),
                    ("status", status),
                ],
                ttl: None,
            },
            Op::CounterAdd(1.0),
        );
        let duration = observe(seconds, &self.settings.duration_buckets);
        let _ = match exemplar {
            Some(e) => w.update_with_exemplar(&id(DURATION, DURATION_HELP), duration, e),
            None => w.update(&id(DURATION, DURATION_HELP), duration),
        };
        // An application may answer before reading the whole body; the
        // declared length still says what the client sent.
        let request_bytes = self
            .request_bytes
            .load(Relaxed)
            .max(self.declared_request_bytes.unwrap_or(0));
        let _ = w.update(
            &id(REQUEST_SIZE, REQUEST_SIZE_HELP),
            observe(request_bytes as f64, &self.settings.size_buckets),
        );
        let _ = w.update(
            &id(RESPONSE_SIZE, RESPONSE_SIZE_HELP),
            observe(self.response_bytes as f64, &self.settings.size_buckets),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_follow_the_w3c_format() {
        let id = |s: &str| trace_id(s.as_bytes()).map(|t| String::from_utf8(t.to_vec()).unwrap());
        assert_eq!(
            id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // A later version may carry more fields.
        assert_eq!(
            id("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(id(bad), None, "{bad}");
        }
    }

    #[test]
    fn unusual_methods_fold_into_other() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "other"
        );
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
