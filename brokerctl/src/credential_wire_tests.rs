use super::*;

fn read(input: &[u8]) -> Result<Request, Refusal> {
    read_request(&mut &input[..])
}

#[test]
fn reads_what_git_sends() {
    let r = read(
        b"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com\npath=a/b.git\n\
                   wwwauth[]=Bearer realm=\"x\"\nwwwauth[]=Basic\n\n",
    )
    .unwrap();
    assert_eq!((r.protocol.as_str(), r.host.as_str()), ("https", "git.example.com"));
    assert_eq!(r.capabilities, ["authtype", "state"]);
    assert!(r.announced("authtype") && r.password.is_none() && r.username.is_none());
}

#[test]
fn ends_at_a_blank_line_or_at_the_end_without_a_newline() {
    let r = read(b"protocol=https\nhost=a\n\nhost=b\nprotocol=evil\n").unwrap();
    assert_eq!((r.protocol.as_str(), r.host.as_str()), ("https", "a"));
    let r = read(b"protocol=https\nhost=a").unwrap();
    assert_eq!(r.host, "a");
}

#[test]
fn erase_carries_the_token_back() {
    let r = read(b"protocol=https\nhost=h\nusername=oauth2\npassword=tok\n").unwrap();
    assert_eq!((r.username.as_deref(), r.token().map(Secret::expose)), (Some("oauth2"), Some("tok")));
    let r = read(b"capability[]=authtype\nauthtype=Bearer\ncredential=bear\nprotocol=https\nhost=h\n").unwrap();
    assert_eq!((r.authtype.as_deref(), r.token().map(Secret::expose)), (Some("Bearer"), Some("bear")));
}

#[test]
fn a_carriage_return_anywhere_is_refused() {
    assert_eq!(read(b"protocol=https\nhost=git.example.com\r\n").unwrap_err(), Refusal::CarriageReturn(2));
    assert_eq!(read(b"protocol=https\r\nhost=h\n").unwrap_err(), Refusal::CarriageReturn(1));
    assert_eq!(read(b"protocol=https\nhost=h\npath=a\rhost=evil\n").unwrap_err(), Refusal::CarriageReturn(3));
    // In a key we ignore, too: a line git would not write is no request of git's.
    assert_eq!(read(b"x\r=1\nprotocol=https\nhost=h\n").unwrap_err(), Refusal::CarriageReturn(1));
}

#[test]
fn a_nul_is_refused() {
    assert_eq!(read(b"protocol=https\nhost=git.example.com\0.evil\n").unwrap_err(), Refusal::Nul(2));
    assert_eq!(read(b"protocol=https\nhost=h\npassword=a\0b\n").unwrap_err(), Refusal::Nul(3));
}

#[test]
fn protocol_and_host_are_required() {
    assert_eq!(read(b"host=h\n").unwrap_err(), Refusal::NoProtocol);
    assert_eq!(read(b"protocol=https\n").unwrap_err(), Refusal::NoHost);
    assert_eq!(read(b"protocol=https\npath=x\n\nhost=h\n").unwrap_err(), Refusal::NoHost);
    assert_eq!(read(b"").unwrap_err(), Refusal::NoProtocol);
    assert_eq!(read(b"\n").unwrap_err(), Refusal::NoProtocol);
}

#[test]
fn a_line_over_git_s_limit_is_refused_without_reading_on() {
    let mut input = b"protocol=https\nhost=h\npath=".to_vec();
    input.extend(std::iter::repeat_n(b'a', MAX_LINE));
    input.extend(b"\n");
    assert_eq!(read(&input).unwrap_err(), Refusal::TooLong(3));
    // At the limit, newline included: taken.
    let mut input = b"protocol=https\nhost=h\npath=".to_vec();
    input.extend(std::iter::repeat_n(b'a', MAX_LINE - "path=".len() - 1));
    input.extend(b"\n");
    assert!(read(&input).is_ok());
    // An endless line: refused after the limit, the rest never read.
    let mut endless = std::io::BufReader::new(std::io::repeat(b'a'));
    assert_eq!(read_request(&mut endless).unwrap_err(), Refusal::TooLong(1));
}

#[test]
fn endless_lines_are_refused() {
    let mut endless = std::io::BufReader::new(std::io::Read::chain(&b"protocol=https\n"[..], std::io::repeat(b'\n')));
    // Blank lines end the request at once.
    assert_eq!(read_request(&mut endless).unwrap_err(), Refusal::NoHost);
    let many: Vec<u8> = b"wwwauth[]=Basic\n".repeat(MAX_LINES + 1);
    assert_eq!(read(&many).unwrap_err(), Refusal::TooMany);
}

#[test]
fn unknown_keys_are_ignored_and_lines_without_equals_refused() {
    let r = read(b"protocol=https\nhost=h\nfuture_key=1\noauth_refresh_token=x\nstate[]=a\nquit=1\n=\n").unwrap();
    assert_eq!(r.host, "h");
    assert_eq!(read(b"protocol=https\nhost\n").unwrap_err(), Refusal::NoEquals(2));
    // An ignored key's value need not be text.
    assert!(read(b"protocol=https\nhost=h\npath=\xff\xfe\n").is_ok());
    assert_eq!(read(b"protocol=https\nhost=\xff\n").unwrap_err(), Refusal::NotUtf8(2, "host"));
}

#[test]
fn a_key_we_act_on_given_twice_is_refused() {
    assert_eq!(read(b"protocol=https\nhost=a\nhost=b\n").unwrap_err(), Refusal::Twice(3, "host"));
    assert_eq!(read(b"protocol=https\nprotocol=http\nhost=a\n").unwrap_err(), Refusal::Twice(2, "protocol"));
    assert_eq!(read(b"protocol=https\nhost=a\npassword=1\npassword=2\n").unwrap_err(), Refusal::Twice(4, "password"));
    // Those we ignore may repeat.
    assert!(read(b"protocol=https\nhost=a\npath=1\npath=2\n").is_ok());
}

#[test]
fn url_is_refused() {
    assert_eq!(read(b"url=https://git.example.com/x\n").unwrap_err(), Refusal::Url(1));
    assert_eq!(read(b"protocol=https\nhost=h\nurl=https://evil/\n").unwrap_err(), Refusal::Url(3));
}

#[test]
fn an_empty_capability_clears_the_list() {
    let r = read(b"capability[]=authtype\ncapability[]=\ncapability[]=state\nprotocol=https\nhost=h\n").unwrap();
    assert_eq!(r.capabilities, ["state"]);
    assert!(!r.announced("authtype"));
    let r = read(b"capability[]=future\nprotocol=https\nhost=h\n").unwrap();
    assert!(!r.announced("authtype"));
}

#[test]
fn refusals_never_quote_the_input() {
    let secret = "s3cr3t-token";
    for input in [
        format!("protocol=https\nhost=h\npassword={secret}\r\n"),
        format!("protocol=https\nhost=h\npassword={secret}\npassword={secret}\n"),
        format!("protocol=https\n{secret}\n"),
        format!("url=https://u:{secret}@h/\n"),
    ] {
        let refusal = read(input.as_bytes()).unwrap_err();
        assert!(!refusal.to_string().contains(secret) && !format!("{refusal:?}").contains(secret), "{refusal}");
    }
    let r = read(format!("protocol=https\nhost=h\npassword={secret}\n").as_bytes()).unwrap();
    assert!(!format!("{r:?}").contains(secret));
}

fn answer(bearer: bool, token: &str) -> io::Result<String> {
    let token = Secret::new(token);
    let mut out = Vec::new();
    write_answer(&mut out, &Answer { username: "oauth2", token: &token, expires_at: 1_900_000_000, bearer })?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn basic_and_bearer_answers() {
    assert_eq!(answer(false, "tok").unwrap(), "username=oauth2\npassword=tok\npassword_expiry_utc=1900000000\n");
    assert_eq!(
        answer(true, "tok").unwrap(),
        "capability[]=authtype\nauthtype=Bearer\ncredential=tok\nephemeral=true\npassword_expiry_utc=1900000000\n"
    );
}

#[test]
fn a_token_that_would_add_lines_is_not_written() {
    for bad in ["a\nhost=evil", "a\rb", "a\0b", ""] {
        for bearer in [false, true] {
            assert!(answer(bearer, bad).is_err(), "{bad:?}");
        }
    }
}

#[test]
fn bearer_only_when_git_can_send_it_and_the_server_asks_for_it() {
    let wants = |input: &[u8]| read(input).unwrap().wants_bearer();
    assert!(wants(b"capability[]=authtype\nprotocol=https\nhost=h\nwwwauth[]=Bearer realm=\"x\"\nwwwauth[]=Basic\n"));
    assert!(wants(b"capability[]=authtype\nprotocol=https\nhost=h\nwwwauth[]=bearer\n"));
    // GitLab offers only Basic; git 2.46+ announces authtype to every helper anyway.
    assert!(!wants(b"capability[]=authtype\nprotocol=https\nhost=h\nwwwauth[]=Basic realm=\"GitLab\"\n"));
    assert!(!wants(b"capability[]=authtype\nprotocol=https\nhost=h\n"));
    assert!(!wants(b"capability[]=authtype\nprotocol=https\nhost=h\nwwwauth[]=Bearerish\n"));
    assert!(!wants(b"protocol=https\nhost=h\nwwwauth[]=Bearer\n"));
}
