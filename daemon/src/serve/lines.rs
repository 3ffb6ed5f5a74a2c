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

/// A buffer that grew past this for one long line is let go after that line: otherwise every
/// connection that ever sent a long line keeps a 64 KiB buffer for its whole life.
pub const KEEP_AT_MOST: usize = 4096;

/// What a shrunk buffer starts with again: most requests are a hundred bytes.
pub const SMALL: usize = 256;

/// After a line is answered: a buffer grown for a long line goes back to the small size.
/// One comparison on the request path; an allocation only after a long line.
pub fn shrink_after_long_line(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_AT_MOST {
        *buf = Vec::with_capacity(SMALL);
    }
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

    #[tokio::test]
    async fn a_buffer_grown_by_a_long_line_is_shrunk_and_a_small_one_kept() {
        let mut long = vec![b'a'; 60 * 1024];
        long.push(b'\n');
        let mut reader = tokio::io::BufReader::with_capacity(1024, &long[..]);
        let mut buf = Vec::with_capacity(SMALL);
        assert!(matches!(read_line(&mut reader, &mut buf, 64 * 1024).await.unwrap(), Line::Read));
        assert!(buf.capacity() >= 60 * 1024);
        shrink_after_long_line(&mut buf);
        assert_eq!(buf.capacity(), SMALL);

        let mut reader = tokio::io::BufReader::with_capacity(1024, &b"{\"id\":1}\n"[..]);
        read_line(&mut reader, &mut buf, 64 * 1024).await.unwrap();
        let before = buf.as_ptr();
        shrink_after_long_line(&mut buf);
        assert_eq!(buf.as_ptr(), before, "a small buffer is kept: no allocation per request");
    }
}
