//! Listen addresses spelled as the Go exporters spell them.

use std::net::SocketAddr;

/// Resolves a listen address (`:9125` is every address, IPv6 and IPv4,
/// falling back to IPv4 only; `127.0.0.1:9125`, `localhost:9125`) and
/// returns what `bind` makes of the first candidate it accepts, or why
/// none worked.
pub fn bind<T>(
    address: &str,
    bind: impl Fn(SocketAddr) -> std::io::Result<T>,
) -> Result<T, String> {
    let mut candidates =
        oxmon_core::server::parse_listen_address(address).map_err(|e| e.to_string())?;
    if address.starts_with(':') {
        candidates.push(
            format!("0.0.0.0{address}")
                .parse()
                .map_err(|e: std::net::AddrParseError| e.to_string())?,
        );
    }
    let mut last = None;
    for sa in candidates {
        match bind(sa) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map(|e| e.to_string()).unwrap_or_default())
}
