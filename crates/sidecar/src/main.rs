//! oxmon-sidecar.
fn main() {}
