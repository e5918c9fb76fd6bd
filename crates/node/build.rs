//! How a release oxmon-node is linked, for a small resident set
//! (docs/node-bench.md, "Where the RSS goes"). Debug and test builds link as
//! usual.
//!
//! - The functions a scrape runs are grouped at the front of the text
//!   (hot-text.ld, written by `scripts/hot-text`): the kernel maps a binary
//!   in 64 KB folios, so scattered hot functions keep nearly all of a 4 MB
//!   text resident, grouped ones a fifth of it. `OXMON_HOT_TEXT=0` links
//!   without it.
//! - The executable is not position-independent, like Debian's
//!   node_exporter: a PIE carries about 350 KB of relocations that the
//!   loader reads and applies at every start, turning 270 KB of read-only
//!   data into private dirty pages. The price is that the binary's own code
//!   does not move between runs (libraries, heap and stacks still do).
//!   `OXMON_PIE=1` links a PIE.
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=hot-text.ld");
    println!("cargo:rerun-if-env-changed=OXMON_HOT_TEXT");
    println!("cargo:rerun-if-env-changed=OXMON_PIE");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !(release && linux) {
        return;
    }
    if env::var("OXMON_HOT_TEXT").map_or(true, |v| v != "0") {
        let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let script = format!("{dir}/hot-text.ld");
        if std::path::Path::new(&script).exists() {
            println!("cargo:rustc-link-arg-bin=oxmon-node=-Wl,-T,{script}");
        } else {
            println!(
                "cargo:warning={script} is missing: run scripts/hot-text --package oxmon-node"
            );
        }
    }
    if env::var("OXMON_PIE").map_or(true, |v| v != "1") {
        println!("cargo:rustc-link-arg-bin=oxmon-node=-no-pie");
    }
}
