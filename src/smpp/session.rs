//! Per-connection SMPP bookkeeping, without I/O: sequence numbers, the submit window, and
//! which requests are overdue. The link task feeds it events and the current time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What an outstanding request was for, so its response can be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// One segment of outbox message `id`.
    Submit {
        id: u64,
    },
    EnquireLink,
    Unbind,
}

#[derive(Debug)]
pub struct Session {
    next_sequence: u32,
    window: usize,
    outstanding: HashMap<u32, (Pending, Instant)>,
}

impl Session {
    pub fn new(window: usize) -> Self {
        Session {
            next_sequence: 1,
            window,
            outstanding: HashMap::new(),
        }
    }

    /// SMPP sequence numbers run 1..=0x7FFFFFFF and then wrap.
    pub fn next_sequence(&mut self) -> u32 {
        let seq = self.next_sequence;
        self.next_sequence = if seq >= 0x7FFF_FFFF { 1 } else { seq + 1 };
        seq
    }

    /// Allocates a sequence number for a request and remembers it.
    pub fn request(&mut self, what: Pending, now: Instant) -> u32 {
        let seq = self.next_sequence();
        self.outstanding.insert(seq, (what, now));
        seq
    }

    /// Matches a response to its request; None for a response nobody asked for.
    pub fn response(&mut self, sequence_number: u32) -> Option<Pending> {
        self.outstanding.remove(&sequence_number).map(|(p, _)| p)
    }

    /// Submit segments in flight.
    pub fn submits_in_flight(&self) -> usize {
        self.outstanding
            .values()
            .filter(|(p, _)| matches!(p, Pending::Submit { .. }))
            .count()
    }

    /// How many more submit_sm the window allows now.
    pub fn window_room(&self) -> usize {
        self.window.saturating_sub(self.submits_in_flight())
    }

    pub fn is_submitting(&self, id: u64) -> bool {
        self.outstanding
            .values()
            .any(|(p, _)| *p == Pending::Submit { id })
    }

    pub fn enquire_outstanding(&self) -> bool {
        self.outstanding
            .values()
            .any(|(p, _)| *p == Pending::EnquireLink)
    }

    /// Requests unanswered for longer than `timeout`, removed from the books.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Pending> {
        let overdue: Vec<u32> = self
            .outstanding
            .iter()
            .filter(|(_, (_, sent))| now.duration_since(*sent) > timeout)
            .map(|(seq, _)| *seq)
            .collect();
        overdue
            .into_iter()
            .filter_map(|seq| self.response(seq))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_wrap_within_the_valid_range() {
        let mut s = Session::new(1);
        s.next_sequence = 0x7FFF_FFFF;
        assert_eq!(s.next_sequence(), 0x7FFF_FFFF);
        assert_eq!(s.next_sequence(), 1);
    }

    #[test]
    fn window_fills_and_responses_free_it() {
        let now = Instant::now();
        let mut s = Session::new(2);
        let a = s.request(Pending::Submit { id: 1 }, now);
        s.request(Pending::EnquireLink, now);
        s.request(Pending::Submit { id: 2 }, now);
        assert_eq!(s.window_room(), 0);
        assert_eq!(s.response(a), Some(Pending::Submit { id: 1 }));
        assert_eq!(s.window_room(), 1);
        assert!(s.is_submitting(2) && !s.is_submitting(1));
        assert_eq!(s.response(a), None);
    }

    #[test]
    fn overdue_requests_expire() {
        let start = Instant::now();
        let mut s = Session::new(5);
        s.request(Pending::EnquireLink, start);
        let later = start + Duration::from_secs(5);
        s.request(Pending::Submit { id: 9 }, later);
        let expired = s.expire(later + Duration::from_secs(2), Duration::from_secs(3));
        assert_eq!(expired, vec![Pending::EnquireLink]);
        assert!(s.is_submitting(9));
    }
}
