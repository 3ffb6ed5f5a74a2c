//! The latency-versus-connections chart, as a small hand-made SVG (no plotting stack needed
//! for two lines and four points).

pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(usize, f64)>,
}

pub fn svg(title: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 400.0, 70.0, 50.0, 40.0, 150.0);
    let xs: Vec<usize> = series[0].points.iter().map(|p| p.0).collect();
    let y_max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max) * 1.1;
    let x_at = |i: usize| left + (w - left - right) * i as f64 / (xs.len() - 1).max(1) as f64;
    let y_at = |v: f64| h - bottom - (h - bottom - top) * v / y_max;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        w / 2.0
    );
    out += &format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - bottom,
        w - right,
        h - bottom
    );
    out += &format!("<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n", h - bottom);
    for (i, x) in xs.iter().enumerate() {
        out += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x}</text>\n", x_at(i), h - bottom + 18.0);
    }
    out += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">client connections</text>\n",
        (left + w - right) / 2.0,
        h - 12.0
    );
    for k in 0..=4 {
        let v = y_max * k as f64 / 4.0;
        out += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.0}</text><line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/>\n",
            left - 6.0,
            y_at(v) + 4.0,
            w - right,
            y = y_at(v)
        );
    }
    out += &format!(
        "<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">{y_label}</text>\n",
        h / 2.0,
        h / 2.0
    );
    for (n, s) in series.iter().enumerate() {
        let path: Vec<String> =
            s.points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x_at(i), y_at(p.1))).collect();
        out += &format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
            s.color,
            path.join(" ")
        );
        for (i, p) in s.points.iter().enumerate() {
            out += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>\n", x_at(i), y_at(p.1), s.color);
        }
        let ly = top + 20.0 * n as f64;
        out += &format!(
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            w - right + 10.0,
            w - right + 30.0,
            s.color,
            w - right + 35.0,
            ly + 4.0,
            s.name
        );
    }
    out + "</svg>\n"
}
