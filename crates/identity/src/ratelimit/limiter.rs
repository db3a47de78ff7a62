//! A token-bucket limiter in the GCRA form (generic cell rate algorithm): the whole state is one
//! instant, the "theoretical arrival time" (TAT), so a database row of one column holds it.
//!
//! A rule of `max` attempts per `per_secs` allows a burst of `max` attempts at once and then one
//! attempt every `per_secs / max` seconds; over a long time the rate never exceeds `max` per
//! `per_secs`. (Unlike a fixed window there is no edge at which two windows' worth can be spent
//! back to back in an instant, and unlike a sliding log it needs no list of past attempts.)

use chrono::{DateTime, Utc};

use super::{retry_after_secs, Outcome};

/// At most `max` attempts per `per_secs` seconds, with bursts of up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRule {
    pub max: u32,
    pub per_secs: i64,
}

impl LimitRule {
    /// Milliseconds that one attempt uses up of the period (the emission interval), or None for
    /// a rule that allows nothing (`max` of 0 or a period that is not positive).
    fn interval_ms(&self) -> Option<i64> {
        if self.max == 0 || self.per_secs <= 0 {
            return None;
        }
        let interval = self.period_ms() / i64::from(self.max);
        (interval > 0).then_some(interval)
    }

    /// The period in milliseconds; a negative period counts as zero.
    fn period_ms(&self) -> i64 {
        self.per_secs.max(0).saturating_mul(1000)
    }
}

/// The stored state of one limited key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitState {
    /// The theoretical arrival time: when the bucket will be full again.
    pub tat: DateTime<Utc>,
}

impl LimitState {
    /// Whether this state says nothing any more (its bucket is full again at `now`): the row can
    /// be deleted, since [`check`] treats it exactly like no state at all.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.tat <= now
    }
}

/// Decides one attempt at `now` and returns the state to store. A refused attempt does not use
/// up anything (the returned state equals the stored one, bar the clamp below), so hammering
/// while limited does not extend the wait.
///
/// A stored state further ahead than one full period (clock changes, a corrupt row) is clamped to
/// one period, so no stored value can lock a key out for longer than the rule says.
pub fn check(
    state: Option<LimitState>,
    now: DateTime<Utc>,
    rule: &LimitRule,
) -> (Outcome, LimitState) {
    let now_ms = now.timestamp_millis();
    let period = rule.period_ms();
    let stored_ms = state.map_or(now_ms, |s| s.tat.timestamp_millis());
    let tat = stored_ms.clamp(now_ms, now_ms.saturating_add(period));
    let Some(interval) = rule.interval_ms() else {
        let until = now_ms.saturating_add(period.max(1000));
        let outcome = Outcome::Limited {
            retry_after_secs: retry_after_secs(now_ms, until),
        };
        return (outcome, LimitState { tat: at(tat, now) });
    };
    let new_tat = tat.saturating_add(interval);
    let allow_at = new_tat.saturating_sub(period);
    if now_ms < allow_at {
        let outcome = Outcome::Limited {
            retry_after_secs: retry_after_secs(now_ms, allow_at),
        };
        (outcome, LimitState { tat: at(tat, now) })
    } else {
        (
            Outcome::Allowed,
            LimitState {
                tat: at(new_tat, now),
            },
        )
    }
}

/// The instant `ms` milliseconds after 1970, or `fallback` if chrono cannot represent it.
fn at(ms: i64, fallback: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const RULE: LimitRule = LimitRule {
        max: 20,
        per_secs: 300,
    };

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("valid")
    }

    /// Runs attempts at the given offsets (ms after t0) and returns the outcomes.
    fn run(rule: &LimitRule, offsets_ms: &[i64]) -> Vec<Outcome> {
        let mut state = None;
        offsets_ms
            .iter()
            .map(|ms| {
                let (outcome, next) = check(state, t0() + TimeDelta::milliseconds(*ms), rule);
                state = Some(next);
                outcome
            })
            .collect()
    }

    #[test]
    fn a_burst_of_max_is_allowed_and_the_next_is_limited() {
        let outcomes = run(&RULE, &[0; 21]);
        assert!(outcomes[..20].iter().all(Outcome::is_allowed));
        // One attempt is earned back every 300 / 20 = 15 s.
        assert_eq!(
            outcomes[20],
            Outcome::Limited {
                retry_after_secs: 15
            }
        );
    }

    #[test]
    fn limited_attempts_do_not_extend_the_wait() {
        let mut offsets = vec![0; 20];
        offsets.extend([1_000, 2_000, 14_000, 14_999]);
        offsets.push(15_000);
        let outcomes = run(&RULE, &offsets);
        assert_eq!(
            outcomes[20],
            Outcome::Limited {
                retry_after_secs: 14
            }
        );
        assert_eq!(
            outcomes[22],
            Outcome::Limited {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            outcomes[23],
            Outcome::Limited {
                retry_after_secs: 1
            }
        );
        assert_eq!(outcomes[24], Outcome::Allowed);
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_always_allowed() {
        let offsets: Vec<i64> = (0..200).map(|i| i * 15_000).collect();
        assert!(run(&RULE, &offsets).iter().all(Outcome::is_allowed));
    }

    #[test]
    fn after_a_full_period_of_quiet_the_whole_burst_is_back() {
        let mut offsets = vec![0; 20];
        offsets.extend(vec![300_000; 20]);
        offsets.push(300_000);
        let outcomes = run(&RULE, &offsets);
        assert!(outcomes[..40].iter().all(Outcome::is_allowed));
        assert!(!outcomes[40].is_allowed());
    }

    #[test]
    fn stale_state_is_the_same_as_none() {
        let (_, state) = check(None, t0(), &RULE);
        assert!(!state.is_stale(t0()));
        assert!(state.is_stale(t0() + TimeDelta::seconds(15)));
        let later = t0() + TimeDelta::seconds(60);
        assert_eq!(check(Some(state), later, &RULE), check(None, later, &RULE));
    }

    #[test]
    fn a_state_far_in_the_future_waits_at_most_one_period() {
        let corrupt = LimitState {
            tat: t0() + TimeDelta::days(3650),
        };
        let (outcome, state) = check(Some(corrupt), t0(), &RULE);
        assert_eq!(
            outcome,
            Outcome::Limited {
                retry_after_secs: 15
            }
        );
        assert_eq!(state.tat, t0() + TimeDelta::seconds(300));
    }

    #[test]
    fn a_rule_that_allows_nothing_limits_everything() {
        let never = LimitRule {
            max: 0,
            per_secs: 60,
        };
        assert_eq!(
            check(None, t0(), &never).0,
            Outcome::Limited {
                retry_after_secs: 60
            }
        );
        let broken = LimitRule {
            max: 5,
            per_secs: 0,
        };
        assert!(!check(None, t0(), &broken).0.is_allowed());
    }
}
