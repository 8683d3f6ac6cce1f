//! Text the config crate writes (messages, values, sources), collected into
//! a `String` for the CLI to print.

use keepalive_shim_config::Sink;

/// A [`Sink`] that appends to a `String`; bytes that are not UTF-8 become
/// U+FFFD (the config crate writes ASCII and the user's own values).
#[derive(Default)]
pub struct Text(pub String);

impl Sink for Text {
    fn put(&mut self, bytes: &[u8]) {
        self.0.push_str(&String::from_utf8_lossy(bytes));
    }
}
