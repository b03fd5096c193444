//! The configuration object delivered over the secure channel: one or more networks and
//! per-device application settings (key/value). Encoded as canonical TLV (see PROTOCOL.md),
//! written with [`ConfigWriter`] into a caller buffer and read with zero-copy [`ConfigView`],
//! so the enrollee needs no allocator.

/// Largest encoded configuration object an enrollee accepts (networks + settings).
pub const MAX_CONFIG_LEN: usize = 8192;
/// Most networks in one configuration.
pub const MAX_NETWORKS: usize = 8;

/// Wi-Fi security of a network.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum Security {
    /// Open network, no credential.
    Open = 0,
    /// WPA2-Personal (PSK).
    Wpa2Psk = 1,
    /// WPA3-Personal (SAE).
    Wpa3Sae = 2,
}

/// The secret of a network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Credential<'a> {
    /// No secret (open network).
    None,
    /// A passphrase, 8..=63 printable ASCII characters.
    Passphrase(&'a str),
    /// A raw 256-bit PSK (WPA2 only).
    RawPsk(&'a [u8; 32]),
}

/// One network the enrollee may join, in preference order within the configuration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Network<'a> {
    /// SSID, 1..=32 bytes (not necessarily UTF-8).
    pub ssid: &'a [u8],
    /// Security mode.
    pub security: Security,
    /// Secret matching `security`.
    pub credential: Credential<'a>,
    /// Optional BSSID hint.
    pub bssid: Option<[u8; 6]>,
    /// Optional channel hint (1..=14).
    pub channel: Option<u8>,
}

/// Why a configuration object was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfigError {
    /// Larger than [`MAX_CONFIG_LEN`] or the output buffer.
    TooLarge,
    /// Truncated or malformed TLV.
    Malformed,
    /// A field value is out of range (SSID length, passphrase length, security/credential
    /// mismatch, ...).
    InvalidValue,
    /// No network in the object.
    NoNetwork,
    /// More than [`MAX_NETWORKS`] networks.
    TooManyNetworks,
}

/// Writes a canonical configuration object into a caller buffer.
pub struct ConfigWriter<'b> {
    _buf: &'b mut [u8],
    _len: usize,
}

impl<'b> ConfigWriter<'b> {
    /// Starts an object in `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { _buf: buf, _len: 0 }
    }

    /// Appends a network (validated).
    pub fn network(&mut self, net: &Network<'_>) -> Result<&mut Self, ConfigError> {
        todo!("{net:?}")
    }

    /// Appends an application setting. Keys: 1..=64 bytes UTF-8; values up to 4096 bytes.
    pub fn setting(&mut self, key: &str, value: &[u8]) -> Result<&mut Self, ConfigError> {
        todo!("{key} {value:?}")
    }

    /// Finishes; returns the encoded length. Fails if no network was written.
    pub fn finish(self) -> Result<usize, ConfigError> {
        todo!()
    }
}

/// A validated, zero-copy view of an encoded configuration object.
#[derive(Clone, Copy, Debug)]
pub struct ConfigView<'a> {
    _bytes: &'a [u8],
}

impl<'a> ConfigView<'a> {
    /// Validates `bytes` completely (every TLV, every value); never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ConfigError> {
        todo!("{bytes:?}")
    }

    /// The networks, in order.
    pub fn networks(&self) -> impl Iterator<Item = Network<'a>> + 'a {
        core::iter::empty()
    }

    /// The application settings `(key, value)`, in order.
    pub fn settings(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        core::iter::empty()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self._bytes
    }
}
