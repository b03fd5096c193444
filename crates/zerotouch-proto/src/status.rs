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
