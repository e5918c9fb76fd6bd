//! StatsD.
pub mod escape;
pub mod gosyntax;
pub mod line;
pub mod mapper;
