//! Numbers as the benchmark script hands them around: decimal strings on a command line.
//!
//! The figures in `BENCHMARKS.md` were first computed by `awk`, and a refactor must not move
//! them, so these functions keep awk's (mawk's) number semantics where a figure depends on
//! them:
//! - a string's value is its longest decimal prefix ("12.5ms" is 12.5, "n/a" is 0);
//! - a computed number printed without a format is an integer if it is integral, otherwise
//!   `%.6g` ([`awk_str`]) — a median of two runs is printed that way;
//! - `%.Nf` rounds the exact binary value half-to-even, which Rust's `{:.N}` also does.
//!
//! Invariant: every function here is pure; the CLI in [`super`] only parses and prints.

/// The numeric value awk gives a string: the longest prefix that reads as a decimal number
/// (leading blanks skipped), 0 when there is none.
pub fn awk_num(s: &str) -> f64 {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        digits += j - frac_start;
        if digits > 0 {
            i = j;
        }
    }
    if digits == 0 {
        return 0.0;
    }
    // An exponent counts only if digits follow it ("1e" is 1, "1e3" is 1000).
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    t[..i].parse().unwrap_or(0.0)
}

/// How awk prints a computed number: integral values as integers, others as `%.6g`.
pub fn awk_str(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    g6(x)
}

/// C's `%.6g`: six significant digits, trailing zeros dropped, exponent form outside
/// 1e-4 ≤ |x| < 1e6.
pub fn g6(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    // The exponent must be the one after rounding to six digits (999999.5 is 1e+06).
    let e = format!("{x:.5e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    } else {
        let decimals = (5 - exp) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `printf "%.Nf"`.
pub fn fixed(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}

/// bash's builtin `printf '%.Nf'`, which the script used to round a median: it reads its
/// argument as an x86-64 `long double` (64-bit significand), not a double, so a decimal
/// exactly halfway between two results ("0.735" to two places) rounds by where *that*
/// binary value falls: 0.735 becomes 0.74 where a double gives 0.73. Other values round as
/// [`fixed`] does, since only an exact decimal tie can land on different sides.
pub fn fixed_as_bash_printf(s: &str, decimals: usize) -> String {
    let Some((negative, digits, places)) = plain_decimal(s) else {
        return fixed(awk_num(s), decimals);
    };
    if places != decimals + 1 || digits % 10 != 5 || decimals > 12 {
        return fixed(awk_num(s), decimals);
    }
    let truncated = digits / 10;
    let rounded = match long_double_side(digits, 10u128.pow(places as u32)) {
        std::cmp::Ordering::Greater => truncated + 1,
        std::cmp::Ordering::Less => truncated,
        // Exactly representable: printf rounds the tie to even.
        std::cmp::Ordering::Equal => truncated + (truncated % 2),
    };
    let scale = 10u128.pow(decimals as u32);
    let sign = if negative { "-" } else { "" };
    if decimals == 0 {
        format!("{sign}{rounded}")
    } else {
        format!("{sign}{}.{:0decimals$}", rounded / scale, rounded % scale)
    }
}

/// `[-]ddd[.ddd]` as (negative, digits without the point, places after it), trailing zeros of
/// the fraction dropped; `None` for anything else (exponents, words) or more than 15 digits.
fn plain_decimal(s: &str) -> Option<(bool, u128, usize)> {
    let s = s.trim();
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac = frac.trim_end_matches('0');
    let all = format!("{int}{frac}");
    if all.is_empty() || all.len() > 15 || !all.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((negative, all.parse().ok()?, frac.len()))
}

/// Where the long double nearest to num/den (num, den > 0) lies relative to num/den itself.
fn long_double_side(num: u128, den: u128) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    // e = floor(log2(num/den)), first estimated from the bit lengths, then corrected.
    let bits = |x: u128| 127 - x.leading_zeros() as i32;
    let at_least_pow2 = |e: i32| if e >= 0 { num >= den << e } else { num << -e >= den };
    let mut e = bits(num) - bits(den);
    if !at_least_pow2(e) {
        e -= 1;
    }
    // The significand: num/den scaled into [2^63, 2^64), rounded to nearest, ties to even.
    let shift = 63 - e;
    let (n, d) = if shift >= 0 {
        (num << shift, den)
    } else {
        (num, den << -shift)
    };
    let (q, r) = (n / d, n % d);
    if r == 0 {
        return Ordering::Equal;
    }
    let up = match (2 * r).cmp(&d) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => q % 2 == 1,
    };
    if up {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

/// The median as the script always printed it: with an odd count the middle value exactly
/// as given ("0.73" stays "0.73"), with an even count the mean of the two middle values
/// through [`awk_str`]; "n/a" for no values.
pub fn median(values: &[String]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    let mut sorted: Vec<&String> = values.iter().collect();
    sorted.sort_by(|a, b| awk_num(a).total_cmp(&awk_num(b)));
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2].clone()
    } else {
        awk_str((awk_num(sorted[n / 2 - 1]) + awk_num(sorted[n / 2])) / 2.0)
    }
}

/// `a ÷ b` to `decimals` places, "n/a" when b is 0 (or not a number).
pub fn ratio(a: &str, b: &str, decimals: usize) -> String {
    let d = awk_num(b);
    if d == 0.0 {
        "n/a".into()
    } else {
        fixed(awk_num(a) / d, decimals)
    }
}

/// The largest value, returned as given; the first one wins a tie, and "n/a" (0) loses to
/// any positive figure.
pub fn max(values: &[String]) -> Option<&str> {
    let mut best: Option<&String> = None;
    for v in values {
        if best.is_none_or(|b| awk_num(v) > awk_num(b)) {
            best = Some(v);
        }
    }
    best.map(String::as_str)
}

/// A comparison the script asks about, e.g. "is this ≥ the goal".
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Cmp {
    Ge,
    Le,
    Gt,
    Lt,
}

impl Cmp {
    pub fn holds(self, a: &str, b: &str) -> bool {
        let (a, b) = (awk_num(a), awk_num(b));
        match self {
            Cmp::Ge => a >= b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Lt => a < b,
        }
    }
}

/// The status column of a figure: a value is judged against its goal only in a full run
/// (a smoke run's numbers mean nothing), and "n/a" means it was not measured.
pub fn met(value: &str, cmp: Cmp, goal: &str, quick: bool) -> &'static str {
    if value == "n/a" {
        "not measured"
    } else if quick {
        "smoke run: not judged"
    } else if cmp.holds(value, goal) {
        "**met**"
    } else {
        "**not met**"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_string_is_worth_its_leading_number_as_in_awk() {
        assert_eq!(awk_num("12.5ms"), 12.5);
        assert_eq!(awk_num("  42 requests"), 42.0);
        assert_eq!(awk_num("n/a"), 0.0);
        assert_eq!(awk_num(""), 0.0);
        assert_eq!(awk_num("-3"), -3.0);
        assert_eq!(awk_num(".5"), 0.5);
        assert_eq!(awk_num("1e3"), 1000.0);
        assert_eq!(awk_num("1e"), 1.0);
        assert_eq!(awk_num("1.5e+06x"), 1_500_000.0);
        assert_eq!(awk_num("."), 0.0);
    }

    #[test]
    fn computed_numbers_print_like_awk_does() {
        assert_eq!(awk_str(3.0), "3");
        assert_eq!(awk_str(0.735), "0.735");
        assert_eq!(awk_str(46234.55), "46234.6");
        assert_eq!(awk_str(1234567.5), "1.23457e+06");
        assert_eq!(awk_str(0.0491885123), "0.0491885");
        assert_eq!(awk_str(0.00001234), "1.234e-05");
        assert_eq!(awk_str(999999.5), "1e+06");
        assert_eq!(awk_str(-2.5), "-2.5");
    }

    #[test]
    fn an_odd_median_is_the_middle_value_exactly_as_given() {
        assert_eq!(median(&strings(&["0.80", "0.73", "0.71"])), "0.73");
        assert_eq!(median(&strings(&["17499.10"])), "17499.10");
    }

    #[test]
    fn an_even_median_is_the_mean_of_the_middle_pair_in_awk_format() {
        assert_eq!(median(&strings(&["2", "1", "4", "3"])), "2.5");
        assert_eq!(median(&strings(&["45678.9", "46790.2"])), "46234.6");
        assert_eq!(median(&strings(&["10", "20"])), "15");
    }

    /// Each `(value, decimals, want)` rounds to `want`.
    fn assert_rounds(cases: &[(&str, usize, &str)]) {
        for (value, decimals, want) in cases {
            assert_eq!(
                fixed_as_bash_printf(value, *decimals),
                *want,
                "{value} to {decimals} decimals"
            );
        }
    }

    #[test]
    fn a_decimal_tie_rounds_the_way_bash_printf_rounds_it() {
        // Taken from bash 5.2's `printf '%.2f'` on x86-64.
        assert_rounds(&[
            ("0.735", 2, "0.74"),
            ("36.475", 2, "36.47"),
            ("22.915", 2, "22.92"),
            ("0.125", 2, "0.12"),
            ("0.375", 2, "0.38"),
            ("2.675", 2, "2.67"),
            ("-0.735", 2, "-0.74"),
        ]);
    }

    #[test]
    fn values_that_are_not_a_tie_round_as_usual() {
        assert_rounds(&[
            ("0.73", 2, "0.73"),
            ("0.7351", 2, "0.74"),
            ("0.7350", 2, "0.74"),
            ("1.23457e+06", 2, "1234570.00"),
            ("n/a", 2, "0.00"),
            ("46234.5", 0, "46234"),
        ]);
    }

    #[test]
    fn the_median_of_nothing_is_not_available() {
        assert_eq!(median(&[]), "n/a");
    }

    #[test]
    fn the_median_sorts_by_value_not_by_text() {
        assert_eq!(median(&strings(&["9", "10", "100"])), "10");
    }

    #[test]
    fn a_ratio_has_two_decimals_and_no_zero_divisor() {
        assert_eq!(ratio("17499.10", "25000", 2), "0.70");
        assert_eq!(ratio("1", "0", 2), "n/a");
        assert_eq!(ratio("1", "n/a", 2), "n/a");
        assert_eq!(ratio("n/a", "2", 2), "0.00");
        assert_eq!(ratio("18134", "1.04", 0), "17437");
    }

    #[test]
    fn fixed_rounds_ties_to_even_like_printf() {
        assert_eq!(fixed(0.125, 2), "0.12");
        assert_eq!(fixed(0.5, 0), "0");
        assert_eq!(fixed(1.5, 0), "2");
        assert_eq!(fixed(46234.5, 0), "46234");
    }

    #[test]
    fn the_max_keeps_the_winner_as_written_and_the_first_on_a_tie() {
        assert_eq!(max(&strings(&["41000", "52000"])), Some("52000"));
        assert_eq!(max(&strings(&["52000", "n/a"])), Some("52000"));
        assert_eq!(max(&strings(&["n/a", "n/a"])), Some("n/a"));
        assert_eq!(max(&strings(&["7.0", "7"])), Some("7.0"));
        assert_eq!(max(&[]), None);
    }

    #[test]
    fn a_figure_is_judged_only_in_a_full_run_and_only_when_measured() {
        assert_eq!(met("0.73", Cmp::Ge, "0.70", false), "**met**");
        assert_eq!(met("0.69", Cmp::Ge, "0.70", false), "**not met**");
        assert_eq!(met("2", Cmp::Le, "2", false), "**met**");
        assert_eq!(met("0.10", Cmp::Ge, "0.70", true), "smoke run: not judged");
        assert_eq!(met("n/a", Cmp::Ge, "0.70", true), "not measured");
    }

    #[test]
    fn comparisons_read_their_operands_as_awk_does() {
        assert!(Cmp::Gt.holds("300.5", "300"));
        assert!(!Cmp::Gt.holds("300", "300"));
        assert!(Cmp::Lt.holds("n/a", "1"));
    }
}
