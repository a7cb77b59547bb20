//! Median, min and max of a series of timings, in milliseconds.

use std::time::Duration;

pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(times: &[Duration]) -> Summary {
        assert!(!times.is_empty());
        let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = ms.len();
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Summary {
            median,
            min: ms[0],
            max: ms[n - 1],
        }
    }

    /// `median (min–max)`.
    pub fn cell(&self) -> String {
        format!(
            "{} ({}–{})",
            Summary::ms(self.median),
            Summary::ms(self.min),
            Summary::ms(self.max)
        )
    }

    pub fn ms(ms: f64) -> String {
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else if ms < 100.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    }
}

pub fn fmt_ms(d: Duration) -> String {
    Summary::ms(d.as_secs_f64() * 1000.0)
}
