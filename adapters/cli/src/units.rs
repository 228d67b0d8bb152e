//! Command-line values with units: sizes (`64MiB`), durations (`20ms`), rates (`100mbit`)
//! and probabilities (`2%` or `0.02`). Each parser is a clap `value_parser`, so a bad value
//! is reported by clap with the flag's name.

use std::time::Duration;

/// A byte count: `65536`, `64KiB`, `64MiB`, `1.5GB` (binary and decimal units).
pub fn size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("not a size ({e}); try 64MiB or 1000000"))
}

/// A duration: `20ms`, `1s`, `1m 30s`; a bare `0` is zero.
pub fn duration(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("not a duration ({e}); try 20ms or 1s"))
}

/// A rate in bits per second: `100mbit`, `1gbit`, `512kbit`, `9600bit` (decimal, as links
/// are sold).
pub fn rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let scale = match unit.trim().trim_end_matches("/s").trim_end_matches("ps") {
        "bit" | "b" => 1.0,
        "kbit" | "kb" | "k" => 1e3,
        "mbit" | "mb" | "m" => 1e6,
        "gbit" | "gb" | "g" => 1e9,
        _ => {
            return Err(format!(
                "unknown rate unit `{unit}`; try 100mbit, 512kbit or 1gbit"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a rate; try 100mbit"))?;
    let bits = value * scale;
    if !(1.0..=1e12).contains(&bits) {
        return Err(format!("{text} is out of range (1bit to 1000gbit)"));
    }
    Ok(bits as u64)
}

/// A probability: `2%` or `0.02`, from 0 to 1.
pub fn probability(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a probability; try 2% or 0.02"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{text} is not between 0 and 1 (0% and 100%)"));
    }
    Ok(value)
}

/// Bytes as a person reads them (`64.0 MiB`).
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// A rate as a person reads it: bytes per second in MB/s, and Mbit/s.
pub fn throughput(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let per_sec = bytes as f64 / secs;
    format!("{:.1} MB/s ({:.0} Mbit/s)", per_sec / 1e6, per_sec * 8.0 / 1e6)
}

/// A core duration in milliseconds, to a tenth (`40.2 ms`).
pub fn millis(d: weir_core::time::Duration) -> String {
    format!("{:.1} ms", d.as_micros() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_binary_and_decimal_units() {
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert_eq!(size("1000"), Ok(1000));
        assert_eq!(size("2 KB"), Ok(2000));
        assert!(size("lots").is_err());
    }

    #[test]
    fn durations_read_human_units() {
        assert_eq!(duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("1s 500ms"), Ok(Duration::from_millis(1500)));
        assert!(duration("soon").is_err());
    }

    #[test]
    fn rates_are_bits_per_second() {
        assert_eq!(rate("100mbit"), Ok(100_000_000));
        assert_eq!(rate("1.5Gbit/s"), Ok(1_500_000_000));
        assert_eq!(rate("512kbps"), Ok(512_000));
        assert!(rate("fast").is_err());
        assert!(rate("10parsecs").is_err());
        assert!(rate("0bit").is_err());
    }

    #[test]
    fn probabilities_take_percent_or_fraction() {
        assert_eq!(probability("2%"), Ok(0.02));
        assert_eq!(probability("0.5"), Ok(0.5));
        assert!(probability("150%").is_err());
        assert!(probability("-0.1").is_err());
        assert!(probability("often").is_err());
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(
            throughput(10_000_000, Duration::from_secs(2)),
            "5.0 MB/s (40 Mbit/s)"
        );
    }
}
