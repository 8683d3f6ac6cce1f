//! The README's variable table must be exactly what the settings table in
//! the code renders; edit `config/src/settings.rs`, then paste the table this
//! test prints on failure.
// A test crate: a panic is how a test fails, and its indexing and arithmetic
// work on small values the test chose. (clippy.toml relaxes `#[test]`
// functions only; these cover the helpers too.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use keepalive_shim_config::{markdown_table, Sink};

struct Text(String);

impl Sink for Text {
    fn put(&mut self, bytes: &[u8]) {
        self.0
            .push_str(std::str::from_utf8(bytes).expect("the table is UTF-8"));
    }
}

const START: &str = "<!-- settings-table:start (generated from config/src/settings.rs; tests/readme_table.rs checks it) -->\n";
const END: &str = "<!-- settings-table:end -->";

#[test]
fn readme_table_matches_the_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    let mut expected = Text(String::new());
    markdown_table(&mut expected);
    let start = readme
        .find(START)
        .expect("README has the table's start marker")
        + START.len();
    let end = readme[start..]
        .find(END)
        .expect("README has the table's end marker")
        + start;
    let actual = &readme[start..end];
    assert!(
        actual == expected.0,
        "README.md's settings table drifted from the code. Replace it with:\n\n{}",
        expected.0
    );
}
