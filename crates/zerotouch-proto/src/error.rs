//! Error types: enums that say what went wrong. Their `Display` is a sentence a user can act
//! on (what is wrong, what to do); `std::error::Error` is implemented with the `std` feature.

use core::fmt;

/// A key could not be parsed or a signature did not verify.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyError {
    /// Wrong length for the suite.
    BadLength,
    /// Not a valid curve point / key encoding.
    InvalidKey,
    /// The DER SubjectPublicKeyInfo is malformed (truncated, trailing bytes, wrong tags or
    /// lengths, or a point encoding the algorithm does not allow).
    BadSpki,
    /// The DER SubjectPublicKeyInfo is well formed but names an algorithm or curve other than
    /// Ed25519 and P-256 (e.g. RSA, P-384).
    UnsupportedAlgorithm,
    /// Signature verification failed.
    BadSignature,
    /// A key hash in text form is not 64 hexadecimal digits.
    BadKeyHash,
}

/// A configurator certificate was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CertError {
    /// Malformed encoding (wrong length for the suite).
    Malformed,
    /// Owner and subject are of different suites, or the suite is unknown.
    SuiteMismatch,
    /// The owner signature does not verify.
    BadSignature,
    /// The certificate expired.
    Expired,
    /// The certificate names another owner (its owner_id is not the owner key's).
    OwnerMismatch,
    /// The certificate version byte is not 1.
    UnsupportedVersion(u8),
    /// The certified subject key is not a valid key of the suite.
    BadSubject(KeyError),
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
    /// A field is not `X:value` (X an upper-case letter).
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
    /// `I:` contains a character other than printable ASCII.
    BadInfo,
    /// `C:` is not a list of `opclass/channel` (or `channel` continuing the previous class).
    BadChannelList,
    /// `H:` is empty or contains a character other than printable ASCII.
    BadHost,
    /// Something follows the terminating `;;`.
    TrailingData,
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

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadLength => {
                "the key has the wrong length for its suite (Ed25519 keys are 32 bytes, \
                 P-256 keys 33 bytes compressed); check that the key and suite match"
            }
            Self::InvalidKey => {
                "the key is not a valid point on its curve; the key material is corrupted \
                 or was copied incompletely"
            }
            Self::BadSpki => {
                "the public key is not a well-formed DER SubjectPublicKeyInfo; export it \
                 again (e.g. `openssl pkey -pubout -outform DER`)"
            }
            Self::UnsupportedAlgorithm => {
                "the public key uses an unsupported algorithm; only Ed25519 and P-256 \
                 (prime256v1) keys are supported"
            }
            Self::BadSignature => {
                "the signature does not verify with this key; the data was altered or \
                 signed by another key"
            }
            Self::BadKeyHash => "a key hash must be exactly 64 hexadecimal digits (SHA-256)",
        })
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str(
                "the configurator certificate has the wrong length for its suite; \
                 reissue it with the owner key",
            ),
            Self::SuiteMismatch => f.write_str(
                "the owner key and the configurator key are of different suites; \
                 issue the certificate with an owner key of the configurator's suite",
            ),
            Self::BadSignature => f.write_str(
                "the owner signature on the configurator certificate does not verify; \
                 the certificate was altered or issued by another owner",
            ),
            Self::Expired => f.write_str(
                "the configurator certificate has expired; reissue it with the owner key",
            ),
            Self::OwnerMismatch => f.write_str(
                "the configurator certificate was issued by a different owner than the one \
                 checked; use the certificate of this fleet's owner",
            ),
            Self::UnsupportedVersion(v) => write!(
                f,
                "the configurator certificate has version {v}, this build supports only \
                 version 1; reissue it or upgrade"
            ),
            Self::BadSubject(e) => {
                write!(f, "the certified configurator key is unusable: {e}")
            }
        }
    }
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingScheme => f.write_str("a DPP URI must start with `DPP:`"),
            Self::MissingTerminator => f.write_str(
                "the DPP URI does not end with `;;`; it was probably cut off when copied",
            ),
            Self::MissingKey => {
                f.write_str("the DPP URI has no `K:` field; the public key is mandatory")
            }
            Self::MalformedField => f.write_str(
                "a DPP URI field is not of the form `X:value;` with X an upper-case letter",
            ),
            Self::DuplicateField(c) => write!(
                f,
                "the DPP URI contains the field `{c}:` twice; each field may appear once"
            ),
            Self::BadBase64 => f.write_str(
                "the DPP URI `K:` field is not valid base64 (standard alphabet, padded); \
                 it was probably altered when copied",
            ),
            Self::BadKey(e) => write!(f, "the DPP URI `K:` key is unusable: {e}"),
            Self::BadMac => f.write_str(
                "the DPP URI `M:` field must be a MAC address of 12 hex digits without \
                 separators, e.g. `M:0123456789ab;`",
            ),
            Self::BadVersion => {
                f.write_str("the DPP URI `V:` field must be a decimal version number from 0 to 255")
            }
            Self::BadInfo => f.write_str(
                "the DPP URI `I:` field may contain only printable ASCII characters \
                 other than `;`",
            ),
            Self::BadChannelList => f.write_str(
                "the DPP URI `C:` field must be a comma-separated list of \
                 `opclass/channel` (e.g. `C:81/1,115/36;`)",
            ),
            Self::BadHost => f.write_str(
                "the DPP URI `H:` field must be a non-empty host name or address of \
                 printable ASCII characters",
            ),
            Self::TrailingData => {
                f.write_str("the DPP URI has characters after its terminating `;;`; remove them")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(e) => e.fmt(f),
            Self::Cert(e) => e.fmt(f),
            Self::Config(e) => e.fmt(f),
            Self::UnknownSession => f.write_str(
                "no such provisioning session: it ended, timed out or never existed; \
                 start a new one",
            ),
            Self::WrongState => f.write_str(
                "this call does not fit the session's current state; follow the protocol \
                 order (handshake, configuration, then report)",
            ),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Self::Key(e)
    }
}

impl From<CertError> for Error {
    fn from(e: CertError) -> Self {
        Self::Cert(e)
    }
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::Config(e)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KeyError {}
#[cfg(feature = "std")]
impl std::error::Error for CertError {}
#[cfg(feature = "std")]
impl std::error::Error for UriError {}
#[cfg(feature = "std")]
impl std::error::Error for Error {}
#[cfg(feature = "std")]
impl std::error::Error for crate::config::ConfigError {}
