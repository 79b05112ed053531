//! Turning would-be successors away (BUSY, REFUSED) without waiting inside the event loop.

use super::*;

impl Restart {
    pub(super) fn refuse(&mut self, server: &mut Server, peer: OwnedFd, answer: Msg) {
        let Some(slot) = self.refusing.iter().position(Option::is_none) else {
            // a flood of peers: answer at once (a peer that still had its HELLO in flight may
            // see a reset instead); never wait inside the event loop
            let _ = channel::send(&peer, &answer, &[]);
            return;
        };
        if server.poller().add_read(&peer, Token::new(Kind::ReconfigPeer, slot + 1)).is_err() {
            let _ = channel::send(&peer, &answer, &[]);
            return;
        }
        let deadline = server.now() + REFUSE_WAIT_MS;
        self.refusing[slot] = Some(Refusal { peer, answer, deadline });
        self.refusal_readable(server, slot);
    }

    pub(super) fn refusal_readable(&mut self, server: &mut Server, slot: usize) {
        let Some(r) = self.refusing.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if matches!(channel::recv(&r.peer), Ok(None)) && server.now() < r.deadline {
            return; // its HELLO is not there yet
        }
        self.answer_refusal(server, slot);
    }

    pub(super) fn answer_refusal(&mut self, server: &mut Server, slot: usize) {
        if let Some(r) = self.refusing.get_mut(slot).and_then(Option::take) {
            let _ = channel::send(&r.peer, &r.answer, &[]);
            server.poller().delete(&r.peer);
        }
    }
}
