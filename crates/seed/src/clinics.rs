//! Bookable time: each clinician's schedule is a grid of slot positions, and every position is
//! owned by at most one patient, so no two appointments ever share a slot.
//!
//! A schedule belongs to a group of patients — a practice's list, or a trust's cohort of
//! patients referred to one specialty — and position `pos` is owned by the patient at rank
//! `(pos + phase) mod cycle` in that group (nobody, if the rank is past the end of the list).
//! `cycle` is at least the group's size, coprime with the week's positions so that a patient's
//! positions wander over every weekday and time. Whether the owner actually books the position
//! is a hash of the position compared with the owner's need for care on that date ([`Usage`]).
//! Both sides compute the same answer independently: the shared part writes every unused
//! position in the booking window as a free Slot, and the owner's record writes each used one as
//! a busy Slot with its Appointment. Outside the window only used positions become Slots.

use chrono::{Duration, NaiveDate};

use crate::calendar::{day_number, from_day_number, weekday_index};
use crate::catalogue::Specialty;
use crate::rng::unit;

/// Days before today that the booking window (free slots) starts.
pub(crate) const WINDOW_PAST_DAYS: i64 = 7;
/// A patient owns at most one position per schedule in this many days' worth of positions.
const MIN_CYCLE_DAYS: u64 = 10;

/// Whose appointments a schedule holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Group {
    /// The list of GP practice `p`.
    Practice(u64),
    /// Patients of trust `t` referred to a specialty.
    Cohort(u64, Specialty),
}

/// What kind of appointment a schedule offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SlotKind {
    Gp,
    Nurse,
    Pharmacist,
    Clinic(Specialty),
}

/// The shape of a clinician's working day.
pub(crate) struct Session {
    /// Start of each slot, minutes after midnight.
    pub starts: &'static [u32],
    pub minutes: u32,
}

pub(crate) const GP_SESSION: Session = Session {
    starts: &[
        510, 525, 540, 555, 570, 585, 600, 615, 630, 645, 660, 675, 840, 855, 870, 885, 900, 915,
        930, 945, 960, 975,
    ],
    minutes: 15,
};
pub(crate) const NURSE_SESSION: Session = Session {
    starts: &[
        540, 560, 580, 600, 620, 640, 660, 680, 700, 810, 830, 850, 870, 890, 910, 930, 950, 970,
    ],
    minutes: 20,
};
pub(crate) const PHARMACIST_SESSION: Session = Session {
    starts: &[540, 570, 600, 630, 660, 690],
    minutes: 30,
};
pub(crate) const CLINIC_SESSION: Session = Session {
    starts: &[
        540, 560, 580, 600, 620, 640, 660, 680, 700, 810, 830, 850, 870, 890, 910, 930, 950,
    ],
    minutes: 20,
};

/// One clinician's bookable time.
pub(crate) struct Schedule {
    pub index: usize,
    pub id: String,
    /// Index into the region's staff.
    pub staff: usize,
    /// Index into the region's services.
    pub service: usize,
    pub location: String,
    pub location_name: String,
    pub group: Group,
    pub kind: SlotKind,
    pub session: &'static Session,
    /// Days of the week with a session, Monday = bit 0.
    pub weekdays: u8,
    pub group_size: u64,
    pub cycle: u64,
    pub phase: u64,
    /// Days after today that the booking window reaches.
    pub horizon_days: i64,
    /// Positions a group member owns per year, on open days.
    pub owned_per_year: f64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Schedule {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        id: String,
        staff: usize,
        service: usize,
        location: (String, String),
        group: Group,
        kind: SlotKind,
        session: &'static Session,
        weekdays: u8,
        group_size: u64,
        phase_seed: u64,
        horizon_days: i64,
    ) -> Schedule {
        let per_day = session.starts.len() as u64;
        let week = 7 * per_day;
        let mut cycle = group_size.max(per_day * MIN_CYCLE_DAYS).max(1);
        while gcd(cycle, week) != 1 {
            cycle += 1;
        }
        let open_days = f64::from(weekdays.count_ones()) * 52.0;
        Schedule {
            index,
            id,
            staff,
            service,
            location: location.0,
            location_name: location.1,
            group,
            kind,
            session,
            weekdays,
            group_size,
            cycle,
            phase: phase_seed % cycle,
            horizon_days,
            owned_per_year: open_days * per_day as f64 / cycle as f64,
        }
    }

    fn per_day(&self) -> i64 {
        self.session.starts.len() as i64
    }

    pub(crate) fn is_open(&self, date: NaiveDate) -> bool {
        self.weekdays & (1 << weekday_index(date)) != 0
    }

    /// The first position on `date`.
    pub(crate) fn first_position(&self, date: NaiveDate) -> i64 {
        day_number(date) * self.per_day()
    }

    /// The date and start (minutes after midnight) of a position.
    pub(crate) fn when(&self, pos: i64) -> (NaiveDate, u32) {
        let day = pos.div_euclid(self.per_day());
        let k = pos.rem_euclid(self.per_day()) as usize;
        (
            from_day_number(day),
            self.session.starts[k.min(self.session.starts.len() - 1)],
        )
    }

    /// The rank in the group of the patient who owns `pos`, if anyone does.
    pub(crate) fn owner(&self, pos: i64) -> Option<u64> {
        let r = (pos + self.phase as i64).rem_euclid(self.cycle as i64) as u64;
        (r < self.group_size).then_some(r)
    }

    /// The open positions owned by `rank` from `from` to `to` (dates inclusive).
    pub(crate) fn owned(&self, rank: u64, from: NaiveDate, to: NaiveDate) -> Vec<i64> {
        let start = self.first_position(from);
        let end = self.first_position(to + Duration::days(1));
        let cycle = self.cycle as i64;
        let residue = (rank as i64 - self.phase as i64).rem_euclid(cycle);
        let mut pos = start + (residue - start).rem_euclid(cycle);
        let mut out = Vec::new();
        while pos < end {
            if self.is_open(self.when(pos).0) {
                out.push(pos);
            }
            pos += cycle;
        }
        out
    }

    /// First and last day of the booking window, in which unused positions are free slots.
    pub(crate) fn window(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        (
            today - Duration::days(WINDOW_PAST_DAYS),
            today + Duration::days(self.horizon_days),
        )
    }
}

/// What became of a position its owner used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    Booked,
    Fulfilled,
    NoShow,
    Cancelled,
}

impl Usage {
    pub(crate) fn status(self) -> &'static str {
        match self {
            Usage::Booked => "booked",
            Usage::Fulfilled => "fulfilled",
            Usage::NoShow => "noshow",
            Usage::Cancelled => "cancelled",
        }
    }
}

/// Whether the owner of `pos` uses it, given how often they need this kind of appointment on
/// that date (`per_year`) and how many positions of the kind they own (`owned_per_year`).
pub(crate) fn usage(
    seed: u64,
    schedule: &Schedule,
    pos: i64,
    per_year: f64,
    owned_per_year: f64,
    today: NaiveDate,
) -> Option<Usage> {
    if per_year <= 0.0 || owned_per_year <= 0.0 {
        return None;
    }
    let p = (per_year / owned_per_year).min(0.95);
    if unit(seed, 0x5107, schedule.index as u64, pos as u64) >= p {
        return None;
    }
    let (date, _) = schedule.when(pos);
    if date >= today {
        return Some(Usage::Booked);
    }
    let outcome = unit(seed, 0x0C7C, schedule.index as u64, pos as u64);
    Some(if outcome < 0.88 {
        Usage::Fulfilled
    } else if outcome < 0.94 {
        Usage::NoShow
    } else {
        Usage::Cancelled
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(group_size: u64) -> Schedule {
        Schedule::new(
            0,
            "s".into(),
            0,
            0,
            ("l".into(), "L".into()),
            Group::Practice(0),
            SlotKind::Gp,
            &GP_SESSION,
            0b11110,
            group_size,
            12_345,
            21,
        )
    }

    #[test]
    fn each_position_has_one_owner_and_owners_find_their_positions() {
        let s = schedule(1_000);
        let from = NaiveDate::from_ymd_opt(2025, 1, 6).expect("date");
        let to = from + Duration::days(400);
        let mut owned_by = std::collections::HashMap::new();
        for rank in 0..1_000 {
            for pos in s.owned(rank, from, to) {
                assert_eq!(s.owner(pos), Some(rank));
                assert!(s.is_open(s.when(pos).0));
                assert!(owned_by.insert(pos, rank).is_none(), "position owned twice");
            }
        }
        // Every open position in the range that has an owner was found by that owner.
        let first = s.first_position(from);
        let last = s.first_position(to + Duration::days(1));
        let with_owner = (first..last)
            .filter(|p| s.is_open(s.when(*p).0) && s.owner(*p).is_some())
            .count();
        assert_eq!(owned_by.len(), with_owner);
        assert!(with_owner > 0);
    }

    #[test]
    fn a_small_list_owns_a_position_every_few_weeks_and_the_rest_stay_free() {
        let s = schedule(10);
        assert!(s.cycle >= 10 * GP_SESSION.starts.len() as u64);
        let from = NaiveDate::from_ymd_opt(2025, 1, 6).expect("date");
        let owned = s.owned(3, from, from + Duration::days(365));
        assert!((5..=25).contains(&owned.len()), "{}", owned.len());
        let first = s.first_position(from);
        let unowned = (first..first + 1_000)
            .filter(|p| s.owner(*p).is_none())
            .count();
        assert!(unowned > 900);
    }
}
