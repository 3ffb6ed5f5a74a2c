//! The baseline for `brokerctl token` as a whole process: the least a program can do to get
//! a token from the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

fn main() {
    let path = std::env::var("TOKENBROKER_SOCKET").expect("TOKENBROKER_SOCKET");
    let mut stream = UnixStream::connect(path).expect("connect");
    stream.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"GetAccessToken\"}\n").expect("write");
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).expect("read");
    print!("{answer}");
}
