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
//!
//! ```
//! use zerotouch_sim::Fleet;
//!
//! // Five devices, four of them allowlisted, 10 % loss (5 % duplication and reordering).
//! let mut run = Fleet::new(1).devices(5).allowlisted(4).lossy(0.1).build()?;
//! let report = run.run(600_000); // virtual milliseconds
//! assert_eq!(report.provisioned, 4);
//! assert_eq!(report.wrongly_provisioned, 0);
//! println!("{report}");
//! # Ok::<(), zerotouch_sim::fleet::FleetError>(())
//! ```
//!
//! Other drivers plug in their own nodes: anything that implements [`Node`] can be added
//! with [`Simulator::add_node`] next to (or instead of) the adapters here.

pub mod adversary;
pub mod configurator_node;
pub mod enrollee_node;
pub mod fleet;
pub mod radio;
pub mod sim;

pub use adversary::{Adversary, AirFrame, AnnounceReplayer, Injection, Verdict};
pub use configurator_node::{ConfiguratorNode, DeviceLog};
pub use enrollee_node::{ApModel, ApSecret, Commit, EnrolleeNode, EnrolleeRecord};
pub use fleet::{DeviceReport, Fleet, FleetError, FleetReport, FleetRun, SuiteChoice};
pub use radio::{LinkModel, RadioConfig};
pub use sim::{ChannelStats, Node, NodeAirStats, NodeId, Progress, Recorded, SimReport, Simulator};
