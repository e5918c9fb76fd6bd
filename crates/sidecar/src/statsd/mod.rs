//! StatsD.
