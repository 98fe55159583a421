//! In-kernel test scenarios (cargo feature `scenarios`), selected by `test=NAME` on the command line; the release image has none.

pub mod checks;
pub mod dispatch;
pub mod igb;
pub mod mempool;
pub mod pingpong;
pub mod synthetic;
pub mod synthetic_frames;
pub mod synthetic_slices;
pub mod timer;
