//! Flags of the pipelined delivery to carbon (`--graphite-max-unconfirmed`).

/// Attempts in flight at once by default.
pub const DEFAULT_MAX_UNCONFIRMED: usize = 4;

/// How many attempts may wait for carbon's confirmation at once.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryArgs {
    /// Attempts in flight at once: once one has written its lines and only waits for carbon to close (its confirmation), the next flush goes out on a new connection, up to this many unconfirmed; 1 = one attempt at a time
    #[arg(long = "graphite-max-unconfirmed", default_value_t = DEFAULT_MAX_UNCONFIRMED)]
    pub graphite_max_unconfirmed: usize,
}

impl DeliveryArgs {
    /// The bound, checked; the error is one line.
    pub fn max_unconfirmed(&self) -> Result<usize, String> {
        let n = self.graphite_max_unconfirmed;
        if !(1..=1024).contains(&n) {
            return Err(format!(
                "--graphite-max-unconfirmed must be between 1 and 1024, not {n}"
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_checked() {
        let args = |n| DeliveryArgs {
            graphite_max_unconfirmed: n,
        };
        assert_eq!(args(DEFAULT_MAX_UNCONFIRMED).max_unconfirmed(), Ok(4));
        assert_eq!(args(1).max_unconfirmed(), Ok(1));
        let error = args(0).max_unconfirmed().unwrap_err();
        assert!(
            error.starts_with("--graphite-max-unconfirmed must be"),
            "{error}"
        );
        assert!(!error.contains('\n'));
    }
}
