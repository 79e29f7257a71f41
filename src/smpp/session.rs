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
    pacer: Pacer,
}

/// Spaces submit_sm evenly at the carrier's TPS cap: each PDU books the next free slot, so
/// the rate holds over any stretch of time and there is no burst after an idle spell.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next_free: Option<Instant>,
}

impl Session {
    /// `max_tps` of 0 means no cap.
    pub fn new(window: usize, max_tps: u32) -> Self {
        Session {
            next_sequence: 1,
            window,
            outstanding: HashMap::new(),
            pacer: Pacer {
                interval: if max_tps == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_secs(1) / max_tps
                },
                next_free: None,
            },
        }
    }

    /// When the TPS cap next lets a submit_sm go: None means now.
    pub fn paced_until(&self, now: Instant) -> Option<Instant> {
        self.pacer.next_free.filter(|at| *at > now)
    }

    /// Books `pdus` submit_sm slots starting at the first free one.
    pub fn pace(&mut self, now: Instant, pdus: u32) {
        let start = self.pacer.next_free.map_or(now, |at| at.max(now));
        self.pacer.next_free = Some(start + self.pacer.interval * pdus);
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
        let mut s = Session::new(1, 0);
        s.next_sequence = 0x7FFF_FFFF;
        assert_eq!(s.next_sequence(), 0x7FFF_FFFF);
        assert_eq!(s.next_sequence(), 1);
    }

    #[test]
    fn window_fills_and_responses_free_it() {
        let now = Instant::now();
        let mut s = Session::new(2, 0);
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
    fn pacing_spaces_submits_at_the_cap() {
        let start = Instant::now();
        let mut s = Session::new(10, 4);
        assert_eq!(s.paced_until(start), None);
        s.pace(start, 1);
        assert_eq!(
            s.paced_until(start),
            Some(start + Duration::from_millis(250))
        );
        s.pace(start, 2);
        assert_eq!(
            s.paced_until(start),
            Some(start + Duration::from_millis(750))
        );
        let later = start + Duration::from_secs(5);
        assert_eq!(
            s.paced_until(later),
            None,
            "idle time is not saved up as a burst"
        );
        s.pace(later, 1);
        assert_eq!(
            s.paced_until(later),
            Some(later + Duration::from_millis(250))
        );
        let mut uncapped = Session::new(10, 0);
        uncapped.pace(start, 100);
        assert_eq!(uncapped.paced_until(start), None);
    }

    #[test]
    fn overdue_requests_expire() {
        let start = Instant::now();
        let mut s = Session::new(5, 0);
        s.request(Pending::EnquireLink, start);
        let later = start + Duration::from_secs(5);
        s.request(Pending::Submit { id: 9 }, later);
        let expired = s.expire(later + Duration::from_secs(2), Duration::from_secs(3));
        assert_eq!(expired, vec![Pending::EnquireLink]);
        assert!(s.is_submitting(9));
    }
}
