//! Workloads for zsim: steps, their text form and what each does to a pool
//! and to the model, named scenario specs and the seeded generator, the
//! reference model that knows what every snapshot must contain, and the
//! oracle that compares a pool with it. The runner that drives them through
//! the simulated world lives in `sim` (it needs madsim and the simulated
//! devices), which depends on this crate.

pub mod generate;
pub mod model;
pub mod oracle;
pub mod refusal;
pub mod spec;
pub mod step;
