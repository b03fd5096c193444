//! Announcement modes and the failure reasons an enrollee reports (as DPP R2 does).

/// Why an enrollee is announcing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum AnnounceMode {
    /// Never provisioned (or provisioning was never committed).
    New = 0,
    /// The last delivered configuration failed to join; the reason is in the announcement.
    RetryAfterFailure = 1,
    /// Provisioned before, can no longer join (e.g. the PSK was rotated). Only the pinned
    /// owner's configurators may provision it again.
    Reconfigure = 2,
}

impl AnnounceMode {
    /// The mode with this wire code, or `None` for unknown codes.
    pub fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::New,
            1 => Self::RetryAfterFailure,
            2 => Self::Reconfigure,
            _ => return None,
        })
    }

    /// Stable lower-case name for logs and the registry (`new`, `retry-after-failure`,
    /// `reconfigure`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::RetryAfterFailure => "retry-after-failure",
            Self::Reconfigure => "reconfigure",
        }
    }
}

/// Why a join (or a configuration) failed. Carried in status reports and announcements.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum FailureReason {
    /// No access point with the configured SSID was found.
    ApNotFound = 1,
    /// The access point rejected the credentials (wrong PSK/passphrase).
    AuthFailed = 2,
    /// Associated, but no IP address was obtained.
    NoIpAddress = 3,
    /// The configuration object was malformed, too large or not supported.
    ConfigRejected = 4,
    /// The join attempt did not finish in time.
    Timeout = 5,
    /// Any other failure.
    Other = 255,
}

impl FailureReason {
    /// The reason with this wire code, or `None` for unknown codes.
    pub fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::ApNotFound,
            2 => Self::AuthFailed,
            3 => Self::NoIpAddress,
            4 => Self::ConfigRejected,
            5 => Self::Timeout,
            255 => Self::Other,
            _ => return None,
        })
    }

    /// Stable lower-case name for logs and the registry (`auth-failed`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::ApNotFound => "ap-not-found",
            Self::AuthFailed => "auth-failed",
            Self::NoIpAddress => "no-ip-address",
            Self::ConfigRejected => "config-rejected",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }
}

impl core::fmt::Display for FailureReason {
    /// What happened, and what usually fixes it, for operators.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ApNotFound => {
                "no access point with the configured SSID was found; check the SSID and that \
                 the network is in range"
            }
            Self::AuthFailed => {
                "the access point rejected the credentials; check the passphrase or PSK"
            }
            Self::NoIpAddress => {
                "the device joined the network but got no IP address; check the DHCP server"
            }
            Self::ConfigRejected => {
                "the device rejected the configuration (malformed, too large or unsupported)"
            }
            Self::Timeout => "the join attempt did not finish in time",
            Self::Other => "the join failed for a reason the device did not report",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..=255u8 {
            if let Some(mode) = AnnounceMode::from_u8(code) {
                assert_eq!(mode as u8, code);
            }
            if let Some(reason) = FailureReason::from_u8(code) {
                assert_eq!(reason as u8, code);
            }
        }
        assert_eq!(AnnounceMode::from_u8(3), None);
        assert_eq!(FailureReason::from_u8(0), None);
    }
}
