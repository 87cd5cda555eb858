//! The coverage heat map as an image: SVG (labels, dates and legend as text) or PNG (cells,
//! month ticks and legend swatches only: plotters draws text on bitmaps only through a font
//! crate, left out for its build cost). Drawn with plotters; the PNG is plotters' bitmap
//! backend's RGB buffer in a PNG container written here ([`encode_png`]).
//!
//! Layout, in pixels: a margin of 10 all round; a label column 7 per character of the longest
//! label (at most 40 characters) plus 8, SVG only; the days folded into at most 1,000 cells as
//! on a terminal ([`Fold`]), each `clamp(1000 / cells, 2, 12)` wide; a header of 30, a row of
//! 14 per series and a legend of 24. The width is at least 320.

use std::io::Write;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::{Completeness, Coverage, Fold};
use crate::error::{Error, Result};

const MARGIN: u32 = 10;
const HEADER: u32 = 30;
const ROW: u32 = 14;
const LEGEND: u32 = 24;
const MAX_CELLS: usize = 1000;
const CHAR_WIDTH: u32 = 7;
const MAX_LABEL: u32 = 40;
const MIN_WIDTH: u32 = 320;
/// A PNG buffer past this many bytes is refused (a dataset of thousands of series): SVG or a
/// filter then.
const MAX_PNG_BYTES: u64 = 256 << 20;

/// An image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// Scalable vector graphics, with text.
    Svg,
    /// A PNG bitmap, without text.
    Png,
}

impl ImageFormat {
    /// The format a file name's extension asks for (`.svg`, `.png`, any case).
    pub fn from_path(path: &Path) -> Result<ImageFormat> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("svg") => Ok(ImageFormat::Svg),
            Some("png") => Ok(ImageFormat::Png),
            _ => Err(Error::Options(format!(
                "coverage image {}: the name must end in .svg or .png",
                path.display()
            ))),
        }
    }
}

/// What was drawn where.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageReport {
    /// The file written.
    pub path: std::path::PathBuf,
    /// Its format.
    pub format: ImageFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Where everything goes (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Width of the label column (0 without text).
    pub label_width: u32,
    /// Width of a cell.
    pub cell_width: u32,
    /// Days per cell (`None`: nothing to show).
    pub fold: Option<Fold>,
}

impl Layout {
    /// The layout of `c`, with a label column when `text`.
    pub fn new(c: &Coverage, text: bool) -> Layout {
        let fold = c.range.map(|(a, b)| Fold::new(a, b, MAX_CELLS));
        let cells = fold.map_or(0, |f| f.cells as u32);
        let cell_width = (MAX_CELLS as u32 / cells.max(1)).clamp(2, 12);
        let longest = c.series.iter().map(|s| s.label.chars().count()).max();
        let label_width = match (text, longest) {
            (true, Some(n)) => CHAR_WIDTH * (n as u32).min(MAX_LABEL) + 8,
            _ => 0,
        };
        Layout {
            width: (2 * MARGIN + label_width + cells * cell_width).max(MIN_WIDTH),
            height: 2 * MARGIN + HEADER + c.series.len() as u32 * ROW + LEGEND,
            label_width,
            cell_width,
            fold,
        }
    }
}

fn colour(c: Completeness) -> RGBColor {
    match c {
        Completeness::Full => RGBColor(46, 160, 67),
        Completeness::Partial => RGBColor(230, 170, 30),
        Completeness::Missing => RGBColor(215, 50, 40),
        Completeness::NoData => RGBColor(235, 235, 235),
    }
}

type Drawn<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws `c` on `area` as `layout` says; text only when `text`.
fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &Coverage,
    layout: &Layout,
    text: bool,
) -> Drawn<DB> {
    area.fill(&WHITE)?;
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    let x0 = (MARGIN + layout.label_width) as i32;
    let top = MARGIN as i32;
    if text {
        let title = match (&c.from, &c.to) {
            (Some(a), Some(b)) => format!("{} v{}: {a} .. {b}, {} days", c.kind, c.version, c.days),
            _ => format!("{} v{}: no data to show", c.kind, c.version),
        };
        area.draw(&Text::new(title, (MARGIN as i32, top), font.clone()))?;
    }
    let cw = layout.cell_width as i32;
    if let Some(fold) = layout.fold {
        draw_ticks(area, &fold, x0, top + HEADER as i32 - 8, cw)?;
        for (r, s) in c.series.iter().enumerate() {
            let y = top + (HEADER + r as u32 * ROW) as i32;
            if text {
                let label: String = s.label.chars().take(MAX_LABEL as usize).collect();
                area.draw(&Text::new(label, (MARGIN as i32, y), font.clone()))?;
            }
            // Cells of 4 pixels and more are drawn apart, narrower ones side by side.
            let gap = i32::from(cw >= 4);
            for (i, cell) in fold.cells_of(s).into_iter().enumerate() {
                let x = x0 + i as i32 * cw;
                let corners = [(x, y + 1), (x + cw - gap, y + ROW as i32 - 2)];
                area.draw(&Rectangle::new(corners, colour(cell).filled()))?;
            }
        }
    }
    let y = top + (HEADER + c.series.len() as u32 * ROW) as i32 + 8;
    let mut x = MARGIN as i32;
    for state in Completeness::ALL {
        area.draw(&Rectangle::new(
            [(x, y), (x + 10, y + 10)],
            colour(state).filled(),
        ))?;
        x += 14;
        if text {
            area.draw(&Text::new(state.meaning(), (x, y - 1), font.clone()))?;
        }
        x += match text {
            true => CHAR_WIDTH as i32 * state.meaning().len() as i32 + 12,
            false => 6,
        };
    }
    Ok(())
}

/// Ticks over the cells that hold the first of a month.
fn draw_ticks<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fold: &Fold,
    x0: i32,
    y: i32,
    cw: i32,
) -> Drawn<DB> {
    for i in (0..fold.cells).filter(|i| fold.starts_month(*i, false)) {
        let x = x0 + i as i32 * cw;
        area.draw(&PathElement::new([(x, y), (x, y + 6)], BLACK))?;
    }
    Ok(())
}

fn draw_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |e| Error::io(path)(std::io::Error::other(format!("drawing the coverage: {e}")))
}

/// Draws `c` into `path`, SVG or PNG by its extension.
pub fn write_image(c: &Coverage, path: &Path) -> Result<ImageReport> {
    let format = ImageFormat::from_path(path)?;
    let text = format == ImageFormat::Svg;
    let layout = Layout::new(c, text);
    let size = (layout.width, layout.height);
    let fail = draw_err(path);
    match format {
        ImageFormat::Svg => {
            let area = SVGBackend::new(path, size).into_drawing_area();
            draw(&area, c, &layout, true).map_err(|e| fail(e.to_string()))?;
            area.present().map_err(|e| fail(e.to_string()))?;
        }
        ImageFormat::Png => write_png(c, &layout, path)?,
    }
    Ok(ImageReport {
        path: path.to_path_buf(),
        format,
        width: layout.width,
        height: layout.height,
    })
}

fn write_png(c: &Coverage, layout: &Layout, path: &Path) -> Result<()> {
    let fail = draw_err(path);
    let bytes = u64::from(layout.width) * u64::from(layout.height) * 3;
    if bytes > MAX_PNG_BYTES {
        return Err(Error::Options(format!(
            "coverage image {}: a {}x{} PNG is too large; write an .svg or filter the series",
            path.display(),
            layout.width,
            layout.height
        )));
    }
    let mut buf = vec![0u8; bytes as usize];
    {
        let area =
            BitMapBackend::with_buffer(&mut buf, (layout.width, layout.height)).into_drawing_area();
        draw(&area, c, layout, false).map_err(|e| fail(e.to_string()))?;
        area.present().map_err(|e| fail(e.to_string()))?;
    }
    let file = std::fs::File::create(path).map_err(Error::io(path))?;
    let mut out = std::io::BufWriter::new(file);
    encode_png(&buf, layout.width, layout.height, &mut out)
        .and_then(|()| out.flush())
        .map_err(Error::io(path))
}

/// Writes `rgb` (8-bit RGB, `width` by `height`, rows top to bottom) as a PNG: the signature,
/// `IHDR`, one zlib-compressed `IDAT` of the rows each led by filter type 0 (none), `IEND`.
pub fn encode_png(
    rgb: &[u8],
    width: u32,
    height: u32,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let row = width as usize * 3;
    if rgb.len() != row * height as usize {
        return Err(std::io::Error::other(format!(
            "{} bytes are no {width}x{height} RGB image",
            rgb.len()
        )));
    }
    out.write_all(b"\x89PNG\r\n\x1a\n")?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, filters of method 0, no interlace.
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(out, b"IHDR", &ihdr)?;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    for line in rgb.chunks(row.max(1)) {
        z.write_all(&[0])?;
        z.write_all(line)?;
    }
    png_chunk(out, b"IDAT", &z.finish()?)?;
    png_chunk(out, b"IEND", &[])
}

fn png_chunk(out: &mut impl Write, kind: &[u8; 4], data: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(data.len()).map_err(std::io::Error::other)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.write_all(&len.to_be_bytes())?;
    out.write_all(kind)?;
    out.write_all(data)?;
    out.write_all(&crc.finalize().to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_chooses_the_format() {
        assert_eq!(
            ImageFormat::from_path(Path::new("a.SVG")).unwrap(),
            ImageFormat::Svg
        );
        assert_eq!(
            ImageFormat::from_path(Path::new("x/a.png")).unwrap(),
            ImageFormat::Png
        );
        assert!(ImageFormat::from_path(Path::new("a.jpg")).is_err());
        assert!(ImageFormat::from_path(Path::new("png")).is_err());
    }

    #[test]
    fn an_empty_coverage_has_the_minimum_size() {
        let l = Layout::new(&Coverage::default(), true);
        assert_eq!(
            (l.width, l.height),
            (MIN_WIDTH, 2 * MARGIN + HEADER + LEGEND)
        );
        assert_eq!(l.fold, None);
    }

    #[test]
    fn png_holds_the_rows_unfiltered_with_valid_crcs() {
        use std::io::Read;
        let rgb = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let mut png = vec![];
        encode_png(&rgb, 2, 2, &mut png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[8..16], [0, 0, 0, 13, b'I', b'H', b'D', b'R']);
        assert_eq!(&png[16..29], [0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
        // The CRC of IHDR, computed by zlib's crc32 over "IHDR" and its data.
        let crc = crc32fast::hash(&png[12..29]);
        assert_eq!(&png[29..33], crc.to_be_bytes());
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut rows = vec![];
        flate2::read::ZlibDecoder::new(&png[41..41 + idat_len])
            .read_to_end(&mut rows)
            .unwrap();
        assert_eq!(rows, [0, 1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10, 11, 12]);
        assert_eq!(
            &png[png.len() - 12..png.len() - 4],
            [0, 0, 0, 0, b'I', b'E', b'N', b'D']
        );
        assert!(encode_png(&rgb, 3, 2, &mut vec![]).is_err());
    }
}
