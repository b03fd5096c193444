//! zerotouch-sim: a deterministic, seeded discrete-event simulation of the ESP-NOW radio
//! that drives the real zerotouch state machines.
//!
//! - [`Simulator`]: the event engine. Nodes implement [`Node`] (sans-IO, in the style of
//!   quinn-proto's test harness); the simulator moves their frames over channels with
//!   airtime, loss, duplication, reordering and delay ([`radio`]), shows every frame to an
//!   optional [`Adversary`] and keeps a recorder of everything on air.
//! - [`EnrolleeNode`] and [`ConfiguratorNode`]: adapters around `zerotouch_proto`'s
//!   `Enrollee` and `Configurator`, with a model of the access points a device can join and
//!   an in-memory allowlist and profile store.
//! - [`Fleet`]: builds the common scenario (N enrollees, M of them allowlisted, K
//!   configurators on chosen channels) from one seed, runs it and reports.
//!
//! Everything random comes from the seed: two runs with the same seed and configuration
//! produce identical reports.

pub mod adversary;
pub mod configurator_node;
pub mod enrollee_node;
pub mod fleet;
pub mod radio;
pub mod sim;

pub use adversary::{Adversary, AirFrame, Injection, Verdict};
pub use configurator_node::{ConfiguratorNode, DeviceLog};
pub use enrollee_node::{ApModel, ApSecret, Commit, EnrolleeNode, EnrolleeRecord};
pub use fleet::{DeviceReport, Fleet, FleetReport, FleetRun, SuiteChoice};
pub use radio::{LinkModel, RadioConfig};
pub use sim::{ChannelStats, Node, NodeAirStats, NodeId, Progress, Recorded, SimReport, Simulator};
