//! Error types: enums that say what went wrong.

/// A key could not be parsed or a signature did not verify.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyError {
    /// Wrong length for the suite.
    BadLength,
    /// Not a valid curve point / key encoding.
    InvalidKey,
    /// The DER SubjectPublicKeyInfo is malformed or names an unsupported algorithm.
    BadSpki,
    /// Signature verification failed.
    BadSignature,
}

/// A configurator certificate was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CertError {
    /// Malformed encoding.
    Malformed,
    /// Owner and subject are of different suites, or the suite is unknown.
    SuiteMismatch,
    /// The owner signature does not verify.
    BadSignature,
    /// The certificate expired.
    Expired,
}

/// A DPP URI was rejected. Each variant names the problem.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UriError {
    /// Does not start with `DPP:`.
    MissingScheme,
    /// Does not end with `;;`.
    MissingTerminator,
    /// No `K:` field.
    MissingKey,
    /// A field is not `X:value`.
    MalformedField,
    /// The same field appears twice.
    DuplicateField(char),
    /// `K:` is not valid base64.
    BadBase64,
    /// `K:` is not a supported SubjectPublicKeyInfo.
    BadKey(KeyError),
    /// `M:` is not 12 hex digits.
    BadMac,
    /// `V:` is not a number.
    BadVersion,
}

/// Errors surfaced by the protocol API (not by frame handling, which never fails loudly:
/// bad frames are counted and dropped).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// A key problem.
    Key(KeyError),
    /// A certificate problem.
    Cert(CertError),
    /// The configuration object is too large or malformed.
    Config(crate::config::ConfigError),
    /// No such session (ended, timed out or never existed).
    UnknownSession,
    /// The call does not fit the current state (e.g. a join report before a configuration).
    WrongState,
}

macro_rules! display_via_debug {
    ($($t:ty),*) => {$(
        impl core::fmt::Display for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(self, f)
            }
        }
        #[cfg(feature = "std")]
        impl std::error::Error for $t {}
    )*};
}
display_via_debug!(KeyError, CertError, UriError, Error);
