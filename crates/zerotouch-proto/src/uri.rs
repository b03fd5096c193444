//! DPP bootstrap URIs (`DPP:[C:..;][M:..;][I:..;][V:..;][H:..;]K:<base64 SPKI>;;`), parsed and
//! produced exactly as Wi-Fi Easy Connect defines them, so allowlists can be fed from device
//! labels, QR codes and DPP tools.

use crate::error::UriError;
use crate::keys::PublicKey;
use crate::Addr;

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
    /// Parses a URI; a malformed one gets an error naming the field and the problem.
    pub fn parse(uri: &'a str) -> Result<Self, UriError> {
        todo!("{uri}")
    }

    /// Writes the canonical URI (`DPP:[V:..;][M:..;][I:..;]K:..;;`) into `out`.
    pub fn write(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        todo!("{:p}", out)
    }
}
