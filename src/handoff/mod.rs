//! The hot-restart handoff: its wire format (`codec`, sans-io) and its transport over unix
//! sockets with `SCM_RIGHTS` (`transport`). The protocol's state machines live in `restart`.

pub mod codec;
pub mod transport;
