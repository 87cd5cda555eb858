//! The coverage heat map for a terminal: one row per series, one cell per day (whole weeks per
//! cell when the days do not fit the width), coloured by completeness, with the share of
//! candles (or days) present at the end of each row and a legend.

use super::{Completeness, Coverage, Fold, Series, date_text};

/// How to draw.
#[derive(Clone, Copy, Debug)]
pub struct TextOptions {
    /// Columns available (the terminal's width).
    pub width: usize,
    /// ANSI colours and block glyphs; plain ASCII (`# + .`) without.
    pub colour: bool,
}

impl TextOptions {
    /// For standard output: its terminal's width ([`terminal_width`]), colours only on a
    /// terminal and when `NO_COLOR` is unset or empty.
    pub fn for_stdout() -> TextOptions {
        use std::io::IsTerminal;
        TextOptions {
            width: terminal_width(),
            colour: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

/// Labels longer than this are cut (a symbol can be 300 bytes long).
const MAX_LABEL: usize = 32;
/// `  100.0%` after the cells.
const PERCENT_WIDTH: usize = 8;
/// Fewer cells than this are not worth drawing: the width is then exceeded.
const MIN_CELLS: usize = 8;

/// The glyph of a cell.
fn glyph(c: Completeness, colour: bool) -> &'static str {
    match (c, colour) {
        (Completeness::Full, false) => "#",
        (Completeness::Partial, false) => "+",
        (Completeness::Missing, false) => ".",
        (Completeness::Full, true) => "\x1b[32m█\x1b[0m",
        (Completeness::Partial, true) => "\x1b[33m▒\x1b[0m",
        (Completeness::Missing, true) => "\x1b[31m░\x1b[0m",
        (Completeness::NoData, _) => " ",
    }
}

/// A label fit for a terminal: control characters (an escape sequence in a symbol) shown as
/// `?`, cut to `width` characters with `~` marking the cut, padded to `width`.
pub fn fit_label(label: &str, width: usize) -> String {
    let clean: Vec<char> = label
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let text: String = if clean.len() > width {
        clean[..width.saturating_sub(1)]
            .iter()
            .chain(['~'].iter())
            .collect()
    } else {
        clean.into_iter().collect()
    };
    format!("{text:<width$}")
}

/// `have` of `due` as a percentage rounded down (never 100% while anything is missing).
pub fn percent(have: u64, due: u64) -> String {
    if due == 0 {
        return format!("{:>w$}", "-", w = PERCENT_WIDTH);
    }
    let tenths = u128::from(have.min(due)) * 1000 / u128::from(due);
    format!("{:>5}.{}%", tenths / 10, tenths % 10)
}

/// The share present of a series: candles for a candle series, days for a presence one.
fn share(s: &Series) -> String {
    let t = &s.totals;
    match (t.present, t.expected) {
        (Some(have), Some(due)) => percent(have, due),
        _ => percent(t.days_full, t.days_full + t.days_missing),
    }
}

/// A ruler over the cells: `|` on the cells holding the first of a month (of a year, when a
/// cell is more than a week).
fn ruler(fold: &Fold) -> String {
    (0..fold.cells)
        .map(|i| match fold.starts_month(i, fold.per_cell > 7) {
            true => '|',
            false => ' ',
        })
        .collect()
}

/// The heat map as text, lines ending in `\n`.
pub fn render(c: &Coverage, opts: &TextOptions) -> String {
    let Some((first, last)) = c.range.filter(|_| !c.series.is_empty()) else {
        return format!("{} v{}: no data to show\n", c.kind, c.version);
    };
    let label_width = c
        .series
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, MAX_LABEL)
        .min(opts.width / 3);
    let room = opts
        .width
        .saturating_sub(label_width + 1 + PERCENT_WIDTH)
        .max(MIN_CELLS);
    let fold = Fold::new(first, last, room);
    let unit = match fold.per_cell {
        1 => "1 cell = 1 day".to_string(),
        n => format!("1 cell = {n} days from a Monday"),
    };
    let mut out = format!(
        "{} v{}: {} .. {}, {} days, {} series; {unit}\n",
        c.kind,
        c.version,
        date_text(first),
        date_text(last),
        c.days,
        c.series.len()
    );
    let pad = " ".repeat(label_width + 1);
    let (start, end) = (date_text(fold.start), date_text(last));
    let dates = match fold.cells > start.len() + end.len() {
        true => format!("{start}{end:>w$}", w = fold.cells - start.len()),
        false => start,
    };
    out.push_str(&format!("{pad}{dates}\n{pad}{}\n", ruler(&fold)));
    for s in &c.series {
        let cells: String = fold
            .cells_of(s)
            .into_iter()
            .map(|x| glyph(x, opts.colour))
            .collect();
        out.push_str(&format!(
            "{} {cells}{}\n",
            fit_label(&s.label, label_width),
            share(s)
        ));
    }
    let legend: Vec<String> = Completeness::ALL
        .iter()
        .map(|x| match x {
            Completeness::NoData => format!("(blank) {}", x.meaning()),
            _ => format!("{} {}", glyph(*x, opts.colour), x.meaning()),
        })
        .collect();
    out.push_str(&format!(
        "{}\n%: candles present (days, without a timeframe)\n",
        legend.join("  ")
    ));
    out
}

/// The width to draw for: `COLUMNS` when set, else the terminal's on stdout, else 80.
pub fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    // SAFETY: TIOCGWINSZ fills the `winsize` it is given and reads nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    match ok && size.ws_col > 0 {
        true => usize::from(size.ws_col),
        false => 80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_cut_cleaned_and_padded() {
        assert_eq!(fit_label("BTC/USDT", 10), "BTC/USDT  ");
        assert_eq!(fit_label("ABCDEFGHIJKL", 5), "ABCD~");
        assert_eq!(fit_label("a\x1b[31mb", 8), "a?[31mb ");
        let long = "é".repeat(300);
        assert_eq!(fit_label(&long, 4).chars().count(), 4);
    }

    #[test]
    fn percent_never_rounds_up_to_full() {
        assert_eq!(percent(1439, 1440), "   99.9%");
        assert_eq!(percent(9999, 10000), "   99.9%");
        assert_eq!(percent(5, 5), "  100.0%");
        assert_eq!(percent(0, 0).trim(), "-");
        assert_eq!(percent(u64::MAX, u64::MAX), "  100.0%");
    }
}
