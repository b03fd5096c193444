//! zerotouch-sim: a deterministic, seeded discrete-event simulation of the ESP-NOW radio.
