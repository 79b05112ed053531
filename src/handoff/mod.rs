//! The hot-restart handoff: its wire format (`codec`, sans-io) and its records over unix
//! sockets with `SCM_RIGHTS` (`channel`). The protocol's state machines live in `restart`.

pub mod channel;
pub mod codec;
