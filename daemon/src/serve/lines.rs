//! Reading newline-delimited requests with a hard cap on line length. An over-long line is
//! skipped to its newline and reported, and the connection goes on (a framed codec would end
//! the stream on its first error).

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

pub enum Line {
    /// A complete line (without its newline) is in the buffer.
    Read,
    /// The line was longer than the cap and has been skipped.
    TooLong,
    Eof,
}

pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // EOF: an unterminated last line still counts.
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Read,
            });
        }
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Read });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<Result<String, &'static str>> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, &mut buf, max).await.unwrap() {
                Line::Read => out.push(Ok(String::from_utf8(buf.clone()).unwrap())),
                Line::TooLong => out.push(Err("too long")),
                Line::Eof => return out,
            }
        }
    }

    #[tokio::test]
    async fn long_lines_are_skipped_and_reading_goes_on() {
        let got = all(b"ab\n0123456789\ncd\nlast", 5).await;
        assert_eq!(got, vec![Ok("ab".into()), Err("too long"), Ok("cd".into()), Ok("last".into())]);
        assert_eq!(all(b"12345\n123456\n", 5).await, vec![Ok("12345".into()), Err("too long")]);
        assert_eq!(all(b"", 5).await, vec![]);
    }
}
