//! The crypto provider: the few operations the protocol needs, per suite, behind a small
//! trait (as rustls does), implemented with vetted RustCrypto / dalek crates.
