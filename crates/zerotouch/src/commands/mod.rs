//! The operator commands: one module per command group.

pub mod allow;
pub mod completions;
pub mod device;
pub mod export;
pub mod fleet;
pub mod log;
pub mod profile;
pub mod radio;
pub mod token;
