//! A login's challenge as a person sees it: the address to open (the one with the code in
//! it first, when the IdP gives one), the user code set apart, and on a terminal a QR code of
//! the address for a phone. `--json` prints none of this.

use qrcode::{Color, EcLevel, QrCode};
use tokenbroker::protocol::LoginChallenge;

/// How the challenge is shown: on a terminal (framed code, QR code) or not (plain lines for
/// whatever reads them), with bold and colours or without, with the QR code or not.
#[derive(Clone, Copy)]
pub struct Look {
    pub terminal: bool,
    pub colour: bool,
    pub qr: bool,
}

/// The text for `brokerctl login`. The challenge was checked: no control characters.
pub fn challenge(c: &LoginChallenge, look: Look) -> String {
    let (Some(uri), Some(code)) = (&c.verification_uri, &c.user_code) else {
        return match &c.authorization_url {
            Some(url) => format!("To log in, open:\n\n    {url}\n\n"),
            None => String::new(),
        };
    };
    let mut out = match &c.verification_uri_complete {
        Some(complete) => format!(
            "To log in, open this address, which has the code in it:\n\n    {complete}\n\n\
             or open {uri} and enter the code:\n\n{}\n",
            user_code(code, look)
        ),
        None => format!("To log in, open {uri}\nand enter the code:\n\n{}\n", user_code(code, look)),
    };
    let target = c.verification_uri_complete.as_deref().unwrap_or(uri);
    if look.terminal
        && look.qr
        && let Some(qr) = qr(target, look.colour)
    {
        out.push_str("Or scan this with a phone:\n\n");
        out.push_str(&qr);
        out.push('\n');
    }
    out
}

/// The code on a line of its own; on a terminal, framed (and bold where colours may be used),
/// so that it stands out from the addresses around it.
fn user_code(code: &str, look: Look) -> String {
    if !look.terminal {
        return format!("    {code}\n");
    }
    let width = code.chars().count() + 4;
    let bold = if look.colour { format!("\x1b[1m{code}\x1b[0m") } else { code.to_owned() };
    format!("    ┌{0}┐\n    │  {bold}  │\n    └{0}┘\n", "─".repeat(width))
}

/// Modules of light around the code, which scanners need to find it.
const QUIET: usize = 2;

/// `data` as a QR code of Unicode half blocks: two rows of modules a line. Light modules are
/// drawn (as `qrencode -t UTF8` does), so that on the usual dark terminal the code is dark on
/// light; with colours allowed, white on black is asked for, whatever the terminal's theme.
fn qr(data: &str, colour: bool) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()?;
    let width = code.width();
    let modules = code.to_colors();
    let size = width + 2 * QUIET;
    let light = |x: usize, y: usize| {
        let inside = (QUIET..QUIET + width).contains(&x) && (QUIET..QUIET + width).contains(&y);
        !inside || modules[(y - QUIET) * width + (x - QUIET)] == Color::Light
    };
    let mut out = String::new();
    for y in (0..size).step_by(2) {
        out.push_str("    ");
        if colour {
            out.push_str("\x1b[97;40m");
        }
        for x in 0..size {
            out.push(match (light(x, y), light(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if colour {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenbroker::protocol::Flow;

    fn device(complete: Option<&str>) -> LoginChallenge {
        LoginChallenge {
            login_id: "l".into(),
            flow: Flow::Device,
            expires_in: 600,
            verification_uri: Some("https://idp.example/device".into()),
            verification_uri_complete: complete.map(Into::into),
            user_code: Some("WDJB-MJHT".into()),
            authorization_url: None,
        }
    }

    const PLAIN: Look = Look { terminal: false, colour: false, qr: true };
    const TERMINAL: Look = Look { terminal: true, colour: false, qr: true };

    #[test]
    fn the_address_with_the_code_comes_first_and_the_code_stands_alone() {
        let complete = "https://idp.example/device?user_code=WDJB-MJHT";
        let text = challenge(&device(Some(complete)), PLAIN);
        let first = text.lines().position(|l| l.trim() == complete).unwrap();
        let other = text.lines().position(|l| l.contains("open https://idp.example/device and enter")).unwrap();
        assert!(first < other, "{text}");
        assert!(text.lines().any(|l| l == "    WDJB-MJHT"), "{text}");
        assert!(!text.contains('█') && !text.contains('┌') && !text.contains('\x1b'), "no terminal: {text}");
        let text = challenge(&device(None), PLAIN);
        assert!(text.starts_with("To log in, open https://idp.example/device\nand enter the code:"), "{text}");
    }

    #[test]
    fn on_a_terminal_the_code_is_framed_and_a_qr_code_is_shown_unless_turned_off() {
        let complete = "https://idp.example/device?user_code=WDJB-MJHT";
        let text = challenge(&device(Some(complete)), TERMINAL);
        assert!(text.contains("│  WDJB-MJHT  │") && text.contains("scan this"), "{text}");
        assert!(text.contains('█') && !text.contains('\x1b'), "NO_COLOR: no escapes");
        let bold = challenge(&device(Some(complete)), Look { colour: true, ..TERMINAL });
        assert!(bold.contains("\x1b[1mWDJB-MJHT\x1b[0m"), "{bold}");
        let off = challenge(&device(Some(complete)), Look { qr: false, ..TERMINAL });
        assert!(!off.contains('█') && !off.contains("scan"), "{off}");
    }

    /// The half blocks read back as the QR code's own modules, quiet zone included.
    #[test]
    fn the_qr_code_is_drawn_module_for_module() {
        let data = "https://idp.example/device?user_code=WDJB-MJHT";
        let drawn = qr(data, false).unwrap();
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).unwrap();
        let (width, modules) = (code.width(), code.to_colors());
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in drawn.lines() {
            let cells: Vec<char> = line.trim_start_matches("    ").chars().collect();
            rows.push(cells.iter().map(|c| matches!(c, '█' | '▀')).collect());
            rows.push(cells.iter().map(|c| matches!(c, '█' | '▄')).collect());
        }
        for y in 0..width + 2 * QUIET {
            for x in 0..width + 2 * QUIET {
                let inside = (QUIET..QUIET + width).contains(&x) && (QUIET..QUIET + width).contains(&y);
                let light = !inside || modules[(y - QUIET) * width + (x - QUIET)] == Color::Light;
                assert_eq!(rows[y][x], light, "module ({x}, {y})");
            }
        }
        let coloured = qr(data, true).unwrap();
        assert!(coloured.lines().all(|l| l.starts_with("    \x1b[97;40m") && l.ends_with("\x1b[0m")));
    }
}
