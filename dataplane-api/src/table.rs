//! Operator tables: left-aligned columns as wide as their widest cell, two spaces apart, the
//! last column unpadded. The one renderer of `l2xdpctl` and `l2xdp-dataplane show` (both
//! print a table by default and JSON with `--json`).

/// `header` and `rows` as table text, one line each, every line ending in a newline.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let width = w.get(i).copied().unwrap_or(0);
                l.push_str(&format!("{c:<width$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        line(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let t = render(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z".into()],
                vec!["1".into(), "22222".into(), "".into()],
            ],
        );
        assert_eq!(t, "A    BB     C\nxxx  y      z\n1    22222\n");
    }
}
