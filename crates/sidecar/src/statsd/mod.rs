//! StatsD.
pub mod escape;
pub mod gosyntax;
pub mod handler;
pub mod line;
pub mod mapper;
pub mod stats;
