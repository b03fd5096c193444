//! The configuration object delivered over the secure channel: one or more networks and
//! per-device application settings (key/value). Encoded as canonical TLV (PROTOCOL.md §7),
//! written with [`ConfigWriter`] into a caller buffer and read with zero-copy [`ConfigView`],
//! so the enrollee needs no allocator.
//!
//! Encoding: entries `type(1) ‖ len(2, big-endian) ‖ value(len)`, Networks (type 1) first,
//! then Settings (type 2). Both sides apply the same rules, so every object has exactly one
//! encoding: a [`ConfigView`] accepts precisely the bytes a [`ConfigWriter`] can produce.

use core::fmt;

/// Largest encoded configuration object an enrollee accepts (networks + settings).
pub const MAX_CONFIG_LEN: usize = 8192;
/// Most networks in one configuration.
pub const MAX_NETWORKS: usize = 8;
/// Longest SSID in bytes.
pub const MAX_SSID_LEN: usize = 32;
/// Longest setting key in bytes (UTF-8).
pub const MAX_SETTING_KEY_LEN: usize = 64;
/// Longest setting value in bytes.
pub const MAX_SETTING_VALUE_LEN: usize = 4096;

const ENTRY_NETWORK: u8 = 1;
const ENTRY_SETTING: u8 = 2;
const ENTRY_HEADER_LEN: usize = 3;

const CRED_NONE: u8 = 0;
const CRED_PASSPHRASE: u8 = 1;
const CRED_RAW_PSK: u8 = 2;

const HINT_BSSID: u8 = 0x01;
const HINT_CHANNEL: u8 = 0x02;

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

impl Security {
    /// The security mode with this wire code, if known.
    pub fn from_u8(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Open),
            1 => Some(Self::Wpa2Psk),
            2 => Some(Self::Wpa3Sae),
            _ => None,
        }
    }
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

impl Network<'_> {
    /// Checks the §7 rules: SSID 1..=32 bytes; open ⇔ no credential; passphrase 8..=63
    /// printable ASCII (WPA2 or WPA3); raw PSK only with WPA2; channel 1..=14.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ssid_ok = (1..=MAX_SSID_LEN).contains(&self.ssid.len());
        let credential_ok = match (self.security, self.credential) {
            (Security::Open, Credential::None) => true,
            (Security::Wpa2Psk | Security::Wpa3Sae, Credential::Passphrase(p)) => {
                is_valid_passphrase(p.as_bytes())
            }
            (Security::Wpa2Psk, Credential::RawPsk(_)) => true,
            _ => false,
        };
        let channel_ok = self.channel.is_none_or(|c| (1..=14).contains(&c));
        if ssid_ok && credential_ok && channel_ok {
            Ok(())
        } else {
            Err(ConfigError::InvalidValue)
        }
    }

    /// Encoded length of the Network value (without the entry header).
    fn value_len(&self) -> usize {
        let cred_len = match self.credential {
            Credential::None => 0,
            Credential::Passphrase(p) => p.len(),
            Credential::RawPsk(k) => k.len(),
        };
        1 + self.ssid.len()
            + 3
            + cred_len
            + 1
            + if self.bssid.is_some() { 6 } else { 0 }
            + if self.channel.is_some() { 1 } else { 0 }
    }
}

fn is_valid_passphrase(p: &[u8]) -> bool {
    (8..=63).contains(&p.len()) && p.iter().all(|c| (0x20..=0x7e).contains(c))
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
    /// A Network entry follows a Setting entry (networks come first).
    OutOfOrder,
    /// Two settings have the same key.
    DuplicateSetting,
    /// An entry type other than Network (1) or Setting (2).
    UnknownEntry(u8),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(
                f,
                "the configuration does not fit ({MAX_CONFIG_LEN} bytes at most, or the \
                 buffer given); deliver fewer or smaller settings"
            ),
            Self::Malformed => f.write_str(
                "the configuration object is truncated or malformed; it was not produced by \
                 a zerotouch configurator of this protocol version",
            ),
            Self::InvalidValue => f.write_str(
                "a configuration value is out of range: SSIDs are 1 to 32 bytes, passphrases \
                 8 to 63 printable ASCII characters, open networks have no credential, raw \
                 PSKs are WPA2 only, channels 1 to 14, setting keys 1 to 64 bytes of UTF-8 \
                 and values at most 4096 bytes",
            ),
            Self::NoNetwork => {
                f.write_str("the configuration has no network; add at least one network")
            }
            Self::TooManyNetworks => write!(
                f,
                "the configuration has more than {MAX_NETWORKS} networks; remove some"
            ),
            Self::OutOfOrder => f.write_str(
                "a network follows a setting in the configuration; write all networks first",
            ),
            Self::DuplicateSetting => f.write_str(
                "the configuration contains the same setting key twice; give each key once",
            ),
            Self::UnknownEntry(t) => write!(
                f,
                "the configuration contains an entry of unknown type {t}; it was produced for \
                 a different protocol version"
            ),
        }
    }
}

/// Writes a canonical configuration object into a caller buffer.
///
/// Every call validates its input first and appends nothing on error, so a failed call
/// leaves the object as it was.
pub struct ConfigWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    networks: usize,
    settings_started: bool,
}

impl<'b> ConfigWriter<'b> {
    /// Starts an object in `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            networks: 0,
            settings_started: false,
        }
    }

    /// Reserves an entry of `value_len` bytes; returns the value slice to fill.
    fn entry(&mut self, kind: u8, value_len: usize) -> Result<&mut [u8], ConfigError> {
        let end = self
            .len
            .checked_add(ENTRY_HEADER_LEN + value_len)
            .ok_or(ConfigError::TooLarge)?;
        if end > MAX_CONFIG_LEN || end > self.buf.len() {
            return Err(ConfigError::TooLarge);
        }
        let len = u16::try_from(value_len).map_err(|_| ConfigError::TooLarge)?;
        let entry = &mut self.buf[self.len..end];
        entry[0] = kind;
        entry[1..3].copy_from_slice(&len.to_be_bytes());
        self.len = end;
        Ok(&mut entry[ENTRY_HEADER_LEN..])
    }

    /// Appends a network (validated). Networks must precede settings.
    pub fn network(&mut self, net: &Network<'_>) -> Result<&mut Self, ConfigError> {
        net.validate()?;
        if self.settings_started {
            return Err(ConfigError::OutOfOrder);
        }
        if self.networks == MAX_NETWORKS {
            return Err(ConfigError::TooManyNetworks);
        }
        let mut value = self.entry(ENTRY_NETWORK, net.value_len())?;
        put(&mut value, &[net.ssid.len() as u8]);
        put(&mut value, net.ssid);
        put(&mut value, &[net.security as u8]);
        match net.credential {
            Credential::None => put(&mut value, &[CRED_NONE, 0]),
            Credential::Passphrase(p) => {
                put(&mut value, &[CRED_PASSPHRASE, p.len() as u8]);
                put(&mut value, p.as_bytes());
            }
            Credential::RawPsk(k) => {
                put(&mut value, &[CRED_RAW_PSK, k.len() as u8]);
                put(&mut value, k);
            }
        }
        let flags = if net.bssid.is_some() { HINT_BSSID } else { 0 }
            | if net.channel.is_some() {
                HINT_CHANNEL
            } else {
                0
            };
        put(&mut value, &[flags]);
        if let Some(bssid) = &net.bssid {
            put(&mut value, bssid);
        }
        if let Some(channel) = net.channel {
            put(&mut value, &[channel]);
        }
        self.networks += 1;
        Ok(self)
    }

    /// Appends an application setting. Keys: 1..=64 bytes UTF-8, unique within the object;
    /// values up to 4096 bytes.
    pub fn setting(&mut self, key: &str, value: &[u8]) -> Result<&mut Self, ConfigError> {
        if !(1..=MAX_SETTING_KEY_LEN).contains(&key.len()) || value.len() > MAX_SETTING_VALUE_LEN {
            return Err(ConfigError::InvalidValue);
        }
        let written = Entries {
            rest: &self.buf[..self.len],
        };
        if written
            .filter_map(|e| setting_key(e.ok()?))
            .any(|k| k == key)
        {
            return Err(ConfigError::DuplicateSetting);
        }
        let mut out = self.entry(ENTRY_SETTING, 1 + key.len() + value.len())?;
        put(&mut out, &[key.len() as u8]);
        put(&mut out, key.as_bytes());
        put(&mut out, value);
        self.settings_started = true;
        Ok(self)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Finishes; returns the encoded length. Fails if no network was written.
    pub fn finish(self) -> Result<usize, ConfigError> {
        if self.networks == 0 {
            return Err(ConfigError::NoNetwork);
        }
        Ok(self.len)
    }
}

/// Copies `bytes` to the front of `out` and advances it. Callers sized `out` exactly
/// (from [`Network::value_len`] or the setting length), so this never runs out of room.
fn put(out: &mut &mut [u8], bytes: &[u8]) {
    let (head, tail) = core::mem::take(out).split_at_mut(bytes.len());
    head.copy_from_slice(bytes);
    *out = tail;
}

/// One raw TLV entry.
#[derive(Clone, Copy)]
struct Entry<'a> {
    kind: u8,
    value: &'a [u8],
}

/// Iterates raw TLV entries; yields `Err` once (and then stops) on a truncated entry.
struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, ConfigError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = match self.rest {
            [kind, hi, lo, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                rest.get(..len)
                    .map(|value| (Entry { kind: *kind, value }, &rest[len..]))
            }
            _ => None,
        };
        match parsed {
            Some((entry, rest)) => {
                self.rest = rest;
                Some(Ok(entry))
            }
            None => {
                self.rest = &[];
                Some(Err(ConfigError::Malformed))
            }
        }
    }
}

/// The key of a Setting entry, if `entry` is a well-formed one.
fn setting_key(entry: Entry<'_>) -> Option<&str> {
    parse_setting(entry).ok().map(|(key, _)| key)
}

/// Splits `n` bytes off the front of `input`.
fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], ConfigError> {
    if input.len() < n {
        return Err(ConfigError::Malformed);
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take_u8(input: &mut &[u8]) -> Result<u8, ConfigError> {
    Ok(take(input, 1)?[0])
}

/// Decodes and validates a Network value.
fn parse_network(entry: Entry<'_>) -> Result<Network<'_>, ConfigError> {
    if entry.kind != ENTRY_NETWORK {
        return Err(ConfigError::Malformed);
    }
    let mut input = entry.value;
    let ssid_len = usize::from(take_u8(&mut input)?);
    let ssid = take(&mut input, ssid_len)?;
    let security = Security::from_u8(take_u8(&mut input)?).ok_or(ConfigError::InvalidValue)?;
    let cred_kind = take_u8(&mut input)?;
    let cred_len = usize::from(take_u8(&mut input)?);
    let cred = take(&mut input, cred_len)?;
    let credential = match cred_kind {
        CRED_NONE if cred.is_empty() => Credential::None,
        CRED_PASSPHRASE => Credential::Passphrase(
            core::str::from_utf8(cred).map_err(|_| ConfigError::InvalidValue)?,
        ),
        CRED_RAW_PSK => Credential::RawPsk(cred.try_into().map_err(|_| ConfigError::InvalidValue)?),
        _ => return Err(ConfigError::InvalidValue),
    };
    let flags = take_u8(&mut input)?;
    if flags & !(HINT_BSSID | HINT_CHANNEL) != 0 {
        return Err(ConfigError::InvalidValue);
    }
    let bssid = if flags & HINT_BSSID != 0 {
        let mut bssid = [0u8; 6];
        bssid.copy_from_slice(take(&mut input, 6)?);
        Some(bssid)
    } else {
        None
    };
    let channel = if flags & HINT_CHANNEL != 0 {
        Some(take_u8(&mut input)?)
    } else {
        None
    };
    if !input.is_empty() {
        return Err(ConfigError::Malformed);
    }
    let network = Network {
        ssid,
        security,
        credential,
        bssid,
        channel,
    };
    network.validate()?;
    Ok(network)
}

/// Decodes and validates a Setting value.
fn parse_setting(entry: Entry<'_>) -> Result<(&str, &[u8]), ConfigError> {
    if entry.kind != ENTRY_SETTING {
        return Err(ConfigError::Malformed);
    }
    let mut input = entry.value;
    let key_len = usize::from(take_u8(&mut input)?);
    if !(1..=MAX_SETTING_KEY_LEN).contains(&key_len) {
        return Err(ConfigError::InvalidValue);
    }
    let key =
        core::str::from_utf8(take(&mut input, key_len)?).map_err(|_| ConfigError::InvalidValue)?;
    if input.len() > MAX_SETTING_VALUE_LEN {
        return Err(ConfigError::InvalidValue);
    }
    Ok((key, input))
}

/// A validated, zero-copy view of an encoded configuration object.
#[derive(Clone, Copy, Debug)]
pub struct ConfigView<'a> {
    bytes: &'a [u8],
}

impl<'a> ConfigView<'a> {
    /// Validates `bytes` completely (every TLV, every value, entry order, setting key
    /// uniqueness); never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ConfigError> {
        if bytes.len() > MAX_CONFIG_LEN {
            return Err(ConfigError::TooLarge);
        }
        let mut networks = 0usize;
        let mut settings_started = false;
        for (index, entry) in (Entries { rest: bytes }).enumerate() {
            let entry = entry?;
            match entry.kind {
                ENTRY_NETWORK => {
                    if settings_started {
                        return Err(ConfigError::OutOfOrder);
                    }
                    parse_network(entry)?;
                    networks += 1;
                    if networks > MAX_NETWORKS {
                        return Err(ConfigError::TooManyNetworks);
                    }
                }
                ENTRY_SETTING => {
                    settings_started = true;
                    let (key, _) = parse_setting(entry)?;
                    // Quadratic, but bounded: at most MAX_CONFIG_LEN / 5 = 1638 settings (about
                    // 1.34 M comparisons), and only on authenticated input (PROTOCOL.md §7).
                    let earlier = Entries { rest: bytes }.take(index);
                    if earlier
                        .filter_map(|e| setting_key(e.ok()?))
                        .any(|k| k == key)
                    {
                        return Err(ConfigError::DuplicateSetting);
                    }
                }
                other => return Err(ConfigError::UnknownEntry(other)),
            }
        }
        if networks == 0 {
            return Err(ConfigError::NoNetwork);
        }
        Ok(Self { bytes })
    }

    /// The networks, in order.
    pub fn networks(&self) -> impl Iterator<Item = Network<'a>> + 'a {
        // Validated by `parse`, so every entry decodes; `ok()` only avoids a panic path.
        Entries { rest: self.bytes }.filter_map(|e| parse_network(e.ok()?).ok())
    }

    /// The application settings `(key, value)`, in order.
    pub fn settings(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        Entries { rest: self.bytes }.filter_map(|e| parse_setting(e.ok()?).ok())
    }

    /// The value of the setting `key`, if present.
    pub fn setting(&self, key: &str) -> Option<&'a [u8]> {
        self.settings().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}
