//! Joining a delivered network with the Wi-Fi station, and mapping failures to the
//! protocol's [`FailureReason`] (reported to the configurator, as DPP R2 does).
//!
//! A join here is association plus the WPA handshake: this firmware carries no IP stack, so
//! "joined" means the access point accepted the credentials ([`FailureReason::NoIpAddress`] is
//! never reported). While the station is connected the radio is locked to the access point's
//! channel, so the driver leaves the network again before it reports over ESP-NOW.

use embassy_time::{Duration, with_timeout};
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ConnectionError, DisconnectReason, Password, Ssid,
    WifiController, WifiError,
};
use zeroize::Zeroize;
use zerotouch_proto::FailureReason;
use zerotouch_proto::config::{Credential, Network, Security};

/// How long one join attempt may take (scan, authentication, 4-way handshake).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Tries to join `network`; on success the station stays connected.
pub async fn join(
    controller: &mut WifiController<'static>,
    network: &Network<'_>,
) -> Result<(), FailureReason> {
    let station = station_config(network)?;
    controller
        .set_config(&Config::Station(station))
        .map_err(|e| match e {
            WifiError::InvalidSsid | WifiError::InvalidPassword | WifiError::InvalidArguments => {
                FailureReason::ConfigRejected
            }
            _ => FailureReason::Other,
        })?;
    match with_timeout(JOIN_TIMEOUT, controller.connect_async()).await {
        Ok(Ok(info)) => {
            log::info!("joined {:?} on channel {}", info.ssid, info.channel);
            Ok(())
        }
        Ok(Err(ConnectionError::Failed(info))) => {
            log::warn!("join failed: {:?}", info.reason);
            Err(classify(info.reason))
        }
        Ok(Err(e)) => {
            log::warn!("join failed: {e:?}");
            Err(FailureReason::Other)
        }
        Err(_) => {
            log::warn!("join timed out after {} s", JOIN_TIMEOUT.as_secs());
            // Abort the attempt so the radio is free for ESP-NOW again.
            let _ = controller.disconnect_async().await;
            Err(FailureReason::Timeout)
        }
    }
}

/// Leaves the network, if connected (frees the radio channel for ESP-NOW).
pub async fn leave(controller: &mut WifiController<'static>) {
    if let Err(e) = controller.disconnect_async().await
        && e != WifiError::NotConnected
    {
        log::warn!("disconnect failed: {e:?}");
    }
}

/// Builds the station configuration for `network`.
fn station_config(network: &Network<'_>) -> Result<StationConfig, FailureReason> {
    let ssid = Ssid::try_from(network.ssid).map_err(|_| FailureReason::ConfigRejected)?;
    let authentication = match (network.security, network.credential) {
        (Security::Open, Credential::None) => AuthenticationMethodConfig::Open,
        (Security::Wpa3Sae, _) => {
            // The esp-wifi-sys-esp32c3 0.3.0 blobs that esp-radio 1.0.0-beta.1 links are built
            // without SAE (WIFI_ENABLE_WPA3_SAE = 0): a WPA3-only AP looks open to them and the
            // join would end as ap-not-found. Refuse it plainly instead.
            log::error!(
                "WPA3-only (SAE) network refused: this firmware's Wi-Fi driver has no SAE; deliver WPA2 or WPA2/WPA3 transition mode"
            );
            return Err(FailureReason::ConfigRejected);
        }
        (Security::Wpa2Psk, Credential::Passphrase(passphrase)) => {
            // The WPA2 threshold (PMF capable, the esp-radio default) also joins an AP in
            // WPA2/WPA3 transition mode, over WPA2.
            AuthenticationMethodConfig::Wpa2Personal(password(passphrase.as_bytes())?)
        }
        (Security::Wpa2Psk, Credential::RawPsk(psk)) => {
            // The supplicant takes a raw PSK as exactly 64 hexadecimal characters.
            let mut hex = hex_encode(psk);
            let config = password(&hex);
            hex.zeroize();
            AuthenticationMethodConfig::Wpa2Personal(config?)
        }
        _ => return Err(FailureReason::ConfigRejected),
    };
    let mut station = StationConfig::default()
        .with_ssid(ssid)
        .with_authentication(authentication);
    if let Some(bssid) = network.bssid {
        station = station.with_bssid(bssid);
    }
    if let Some(channel) = network.channel {
        station = station.with_channel(channel);
    }
    Ok(station)
}

fn password(bytes: &[u8]) -> Result<Password, FailureReason> {
    Password::try_from(bytes).map_err(|_| FailureReason::ConfigRejected)
}

fn hex_encode(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

/// Maps the station's disconnect reason to the reason reported to the configurator.
fn classify(reason: DisconnectReason) -> FailureReason {
    use DisconnectReason as R;
    match reason {
        R::NoAccessPointFound
        | R::NoAccessPointFoundWithCompatibleSecurity
        | R::NoAccessPointFoundInAuthmodeThreshold
        | R::NoAccessPointFoundInRssiThreshold
        | R::BeaconTimeout => FailureReason::ApNotFound,
        // A wrong passphrase shows up as a failed or timed-out 4-way handshake (WPA2) or a
        // rejected SAE authentication (WPA3).
        R::AuthenticationFailed
        | R::FourWayHandshakeTimeout
        | R::HandshakeTimeout
        | R::MicFailure
        | R::AuthenticationExpired
        | R::AkmpInvalid
        | R::InvalidPmkid => FailureReason::AuthFailed,
        R::Timeout => FailureReason::Timeout,
        _ => FailureReason::Other,
    }
}
