//! Quantiles by linear interpolation between closest ranks (PostgreSQL
//! `percentile_cont`, numpy's default), in O(n) with selection instead of a sort.

/// The `q` quantile (0 ≤ q ≤ 1) of `values`, or `None` when empty. Reorders `values`.
pub fn quantile(values: &mut [i64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let position = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lower_rank = position.floor() as usize;
    let fraction = position - lower_rank as f64;
    let (_, lower, above) = values.select_nth_unstable(lower_rank);
    let lower = *lower as f64;
    if fraction == 0.0 || above.is_empty() {
        return Some(lower);
    }
    let upper = *above.iter().min().expect("non-empty") as f64;
    Some(lower + (upper - lower) * fraction)
}

/// Several quantiles of `values` at once, `qs` ascending: each selection works on
/// the part above the previous one, so two quantiles cost little more than one.
/// Reorders `values`.
pub fn quantiles<const N: usize>(values: &mut [i64], qs: [f64; N]) -> [Option<f64>; N] {
    let mut out = [None; N];
    let mut done = 0usize; // values[..done] are all ≤ values[done..]
    for (slot, q) in out.iter_mut().zip(qs) {
        if values.is_empty() {
            break;
        }
        let position = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
        let lower_rank = (position.floor() as usize).max(done);
        let fraction = position - position.floor();
        let (_, lower, above) = values[done..].select_nth_unstable(lower_rank - done);
        let lower = *lower as f64;
        *slot = Some(if fraction == 0.0 || above.is_empty() {
            lower
        } else {
            let upper = *above.iter().min().expect("non-empty") as f64;
            lower + (upper - lower) * fraction
        });
        done = lower_rank;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{quantile, quantiles};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn quantiles_at_once_equal_one_at_a_time(mut values in prop::collection::vec(-1000i64..1000, 0..60)) {
            let expected = [quantile(&mut values.clone(), 0.5), quantile(&mut values.clone(), 0.9)];
            prop_assert_eq!(quantiles(&mut values, [0.5, 0.9]), expected);
        }
    }

    #[test]
    fn interpolates_between_closest_ranks() {
        let cases: &[(&[i64], f64, Option<f64>)] = &[
            (&[], 0.5, None),
            (&[7], 0.9, Some(7.0)),
            (&[4, 1, 3, 2], 0.5, Some(2.5)),
            (&[1, 2, 3], 0.5, Some(2.0)),
            (&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9, Some(91.0)),
            (&[1, 2], 0.9, Some(1.9)),
        ];
        for (values, q, expected) in cases {
            let mut v = values.to_vec();
            let got = quantile(&mut v, *q);
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{values:?} q={q}: {g} != {e}"),
                _ => assert_eq!(got, *expected, "{values:?} q={q}"),
            }
        }
    }
}
