//! The `zerotouch` command.
fn main() {}
