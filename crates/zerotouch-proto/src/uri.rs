//! DPP bootstrap URIs (`DPP:[C:..;][M:..;][I:..;][V:..;][H:..;]K:<base64 SPKI>;;`), parsed and
//! produced as Wi-Fi Easy Connect defines them, so allowlists can be fed from device labels,
//! QR codes and DPP tools (wpa_supplicant's `dpp_bootstrap_get_uri` output parses as is).
//!
//! Parsing: after `DPP:` come fields `X:value;` in any order (X an upper-case letter), then
//! one more `;`. `K` is mandatory; unknown fields are ignored; a field given twice is an error.
//! `K` is standard base64 (with padding) of a DER SubjectPublicKeyInfo: P-256 (what DPP uses)
//! or Ed25519. `H:` (host) is checked but not kept. Writing emits the present fields in the
//! order `V C M I K`, with the MAC in lower case.

use base64ct::{Base64, Encoding};

use crate::Addr;
use crate::error::UriError;
use crate::keys::{MAX_SPKI_INPUT_LEN, MAX_SPKI_LEN, PublicKey};

/// Base64 length of the largest SPKI we write (59 bytes → 80 characters).
const MAX_KEY_BASE64_LEN: usize = MAX_SPKI_LEN.div_ceil(3) * 4;

/// The fields of a DPP bootstrap URI that zerotouch uses. Unknown fields are ignored, as the
/// specification requires.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BootstrapUri<'a> {
    /// `K:` the bootstrap (identity) public key. Mandatory.
    pub key: PublicKey,
    /// `M:` the device MAC address, if given.
    pub mac: Option<Addr>,
    /// `I:` free-form information (label, serial number), if given.
    pub info: Option<&'a str>,
    /// `V:` DPP version, if given.
    pub version: Option<u8>,
    /// `C:` channel list (`opclass/channel,...`) as written, if given.
    pub channels: Option<&'a str>,
}

impl<'a> BootstrapUri<'a> {
    /// A URI carrying only `key` (and `V:2`, the DPP version whose URI format this is).
    pub fn for_key(key: PublicKey) -> Self {
        Self {
            key,
            mac: None,
            info: None,
            version: Some(2),
            channels: None,
        }
    }

    /// Parses a URI; a malformed one gets an error naming the field and the problem.
    /// Never panics, whatever the input.
    pub fn parse(uri: &'a str) -> Result<Self, UriError> {
        let mut rest = uri.strip_prefix("DPP:").ok_or(UriError::MissingScheme)?;
        let mut seen = 0u32; // one bit per field letter A..=Z
        let mut key = None;
        let mut mac = None;
        let mut info = None;
        let mut version = None;
        let mut channels = None;
        loop {
            if let Some(after) = rest.strip_prefix(';') {
                // The key is the one thing every URI needs: report its absence first.
                if key.is_none() {
                    return Err(UriError::MissingKey);
                }
                if !after.is_empty() {
                    return Err(UriError::TrailingData);
                }
                break;
            }
            let end = rest.find(';').ok_or(UriError::MissingTerminator)?;
            let (field, after) = rest.split_at(end);
            rest = &after[1..];
            let (name, value) = match field.as_bytes() {
                [name @ b'A'..=b'Z', b':', ..] => (*name, &field[2..]),
                _ => return Err(UriError::MalformedField),
            };
            let bit = 1u32 << (name - b'A');
            if seen & bit != 0 {
                return Err(UriError::DuplicateField(char::from(name)));
            }
            seen |= bit;
            match name {
                b'K' => key = Some(parse_key(value)?),
                b'M' => mac = Some(parse_mac(value)?),
                b'I' => info = Some(check(value, is_info, UriError::BadInfo)?),
                b'V' => version = Some(parse_version(value)?),
                b'C' => channels = Some(check(value, is_channel_list, UriError::BadChannelList)?),
                b'H' => {
                    check(value, is_host, UriError::BadHost)?;
                }
                _ => {} // unknown fields are ignored (Easy Connect §5.2.1)
            }
        }
        Ok(Self {
            key: key.ok_or(UriError::MissingKey)?,
            mac,
            info,
            version,
            channels,
        })
    }

    /// Writes the canonical URI (`DPP:[V:..;][C:..;][M:..;][I:..;]K:..;;`) into `out`.
    /// Fails (without a partial guarantee on `out`) if `info` or `channels` hold characters
    /// the URI syntax cannot carry, so every written URI parses back to `self`.
    pub fn write(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        if self.info.is_some_and(|i| !is_info(i))
            || self.channels.is_some_and(|c| !is_channel_list(c))
        {
            return Err(core::fmt::Error);
        }
        out.write_str("DPP:")?;
        if let Some(v) = self.version {
            write!(out, "V:{v};")?;
        }
        if let Some(c) = self.channels {
            write!(out, "C:{c};")?;
        }
        if let Some(Addr(m)) = self.mac {
            write!(
                out,
                "M:{:02x}{:02x}{:02x}{:02x}{:02x}{:02x};",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )?;
        }
        if let Some(i) = self.info {
            write!(out, "I:{i};")?;
        }
        let spki = self.key.to_spki_der();
        let mut b64 = [0u8; MAX_KEY_BASE64_LEN];
        // `Base64` is the standard alphabet with padding, as Easy Connect requires.
        let key = Base64::encode(&spki, &mut b64).map_err(|_| core::fmt::Error)?;
        write!(out, "K:{key};;")
    }
}

impl core::fmt::Display for BootstrapUri<'_> {
    /// The canonical URI ([`BootstrapUri::write`]).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.write(f)
    }
}

fn check(value: &str, valid: fn(&str) -> bool, err: UriError) -> Result<&str, UriError> {
    if valid(value) { Ok(value) } else { Err(err) }
}

fn parse_key(value: &str) -> Result<PublicKey, UriError> {
    let mut der = [0u8; MAX_SPKI_INPUT_LEN];
    // Anything longer than the largest supported SPKI cannot be one we accept.
    if value.len() > MAX_SPKI_INPUT_LEN.div_ceil(3) * 4 {
        return Err(UriError::BadKey(
            crate::error::KeyError::UnsupportedAlgorithm,
        ));
    }
    let der = Base64::decode(value, &mut der).map_err(|_| UriError::BadBase64)?;
    PublicKey::from_spki_der(der).map_err(UriError::BadKey)
}

fn parse_mac(value: &str) -> Result<Addr, UriError> {
    let mut mac = [0u8; 6];
    crate::keys::decode_hex(value.as_bytes(), &mut mac).ok_or(UriError::BadMac)?;
    Ok(Addr(mac))
}

fn parse_version(value: &str) -> Result<u8, UriError> {
    // Plain decimal digits only (`u8::from_str` would also take a leading `+`).
    if value.is_empty() || value.len() > 3 || !value.bytes().all(|c| c.is_ascii_digit()) {
        return Err(UriError::BadVersion);
    }
    value.parse().map_err(|_| UriError::BadVersion)
}

/// `I:` may hold printable ASCII except `;` (which ends the field).
fn is_info(value: &str) -> bool {
    value
        .bytes()
        .all(|c| (0x20..=0x7e).contains(&c) && c != b';')
}

/// `H:` is a non-empty host name or address, optionally with `:port`.
fn is_host(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|c| c.is_ascii_graphic() && c != b';')
}

/// `C:` is `class/channel` items separated by commas; a bare `channel` continues the
/// previous class (hostapd accepts and emits `81/1,2,3`). Numbers are 1 to 3 digits.
fn is_channel_list(value: &str) -> bool {
    let number = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_digit());
    let mut have_class = false;
    for item in value.split(',') {
        match item.split_once('/') {
            Some((class, channel)) if number(class) && number(channel) => have_class = true,
            None if have_class && number(item) => {}
            _ => return false,
        }
    }
    have_class
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_lists() {
        for good in ["81/1", "81/1,6,11", "81/1,115/36", "1/2,3/4,5"] {
            assert!(is_channel_list(good), "{good}");
        }
        for bad in [
            "", "1", "81/", "/1", "81/1,", ",81/1", "81/1/2", "1000/1", "81/1a", "81/-1",
        ] {
            assert!(!is_channel_list(bad), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("0"), Ok(0));
        assert_eq!(parse_version("255"), Ok(255));
        for bad in ["", "256", "-1", "+1", "1000", "2 "] {
            assert_eq!(parse_version(bad), Err(UriError::BadVersion), "{bad}");
        }
    }
}
