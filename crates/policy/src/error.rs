//! The policy crate's one error type: input the policy cannot use (a malformed scope, a break-glass
//! request that does not meet the rules). `decide` itself never fails: it answers every question.

/// Why a scope string or a break-glass request was refused. The messages name the rule, never
/// patient data, so they are safe to show and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A scope that is not `<patient|user|system>/<Type or *>.<read|write|*|cruds>`.
    #[error("scope {scope:?}: {problem}")]
    Scope { scope: String, problem: String },
    /// A break-glass reason shorter than the minimum (after trimming).
    #[error("break glass needs a reason of at least {min} characters")]
    BreakGlassReason { min: usize },
    /// A break-glass window that is over.
    #[error("the break-glass access has expired")]
    BreakGlassExpired,
    /// A break-glass window longer than the policy allows.
    #[error("break-glass access may last at most {max_hours} hours")]
    BreakGlassTooLong { max_hours: i64 },
}
