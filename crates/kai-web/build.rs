//! Makes cargo embed the web UI again whenever its build changes.
//!
//! rust-embed reads each file with `include_bytes!`, which tracks the files it saw; a file the
//! next `npm run build` adds or removes (every build renames the hashed assets) would go
//! unnoticed without watching the whole directory. Before the first build, `web/` itself is
//! watched so that the directory's appearance is noticed.

fn main() {
    let dist = std::path::Path::new("../../web/dist");
    if dist.is_dir() {
        println!("cargo::rerun-if-changed=../../web/dist");
    } else {
        println!("cargo::rerun-if-changed=../../web");
    }
}
