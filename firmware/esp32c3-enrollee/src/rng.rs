//! The hardware true random number generator as a rand_core 0.10 `CryptoRng`.
//!
//! The ESP32-C3 RNG is only a *true* RNG while an entropy source runs: the Wi-Fi/BT radio
//! (esp-radio registers itself as one when the Wi-Fi controller starts) or the SAR ADC. Without
//! one it degrades to a pseudo-random sequence that must never seed a key. [`HardwareRng::new`]
//! therefore refuses to exist before the radio is up, and the firmware keeps the Wi-Fi
//! controller alive for its whole run, so every byte the protocol core draws (identity key,
//! ephemeral keys, nonces, jitter) comes from the TRNG.

use core::convert::Infallible;

use esp_hal::rng::{Trng, TrngError};

/// The TRNG, usable as `rand_core::CryptoRng` by the zerotouch core.
pub struct HardwareRng {
    trng: Trng,
}

/// Why the hardware RNG could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RngError {
    /// No entropy source is running: start the Wi-Fi controller before creating the RNG.
    NoEntropySource,
}

impl core::fmt::Display for RngError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoEntropySource => f.write_str(
                "the TRNG has no entropy source: start the Wi-Fi controller before creating the RNG",
            ),
        }
    }
}

impl HardwareRng {
    /// Takes the TRNG. Fails unless an entropy source (the radio) is running.
    pub fn new() -> Result<Self, RngError> {
        match Trng::try_new() {
            Ok(trng) => Ok(Self { trng }),
            Err(TrngError::TrngSourceNotEnabled) => Err(RngError::NoEntropySource),
            // `TrngError` is non-exhaustive: any future reason is still "no usable entropy".
            Err(_) => Err(RngError::NoEntropySource),
        }
    }
}

impl rand_core::TryRng for HardwareRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.trng.random())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let low = u64::from(self.trng.random());
        let high = u64::from(self.trng.random());
        Ok((high << 32) | low)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.trng.read(dst);
        Ok(())
    }
}

/// The TRNG output is unpredictable while an entropy source runs, which [`HardwareRng::new`]
/// guarantees; that is what makes it a cryptographic RNG.
impl rand_core::TryCryptoRng for HardwareRng {}
