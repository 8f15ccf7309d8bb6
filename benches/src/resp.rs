//! A minimal RESP2 client for the measuring loops: commands are encoded once up front and written
//! in batches, replies are parsed with no allocation beyond the values kept. It keeps the load
//! generator's own CPU cost low, which matters when it shares two cores with the server.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+…` or `$…`.
    Str(Vec<u8>),
    /// `:…`.
    Int(i64),
    /// `*…`.
    Array(Vec<Value>),
    /// `$-1` or `*-1`.
    Nil,
    /// `-…`.
    Error(String),
}

impl Value {
    /// The text of a string reply.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Str(b) => String::from_utf8(b.clone()).ok(),
            Value::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The integer value of an integer or numeric string reply.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            other => other.text()?.parse().ok(),
        }
    }
}

/// Appends the RESP encoding of one command to `out`.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// One connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Conn {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::with_capacity(1 << 16, stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends one command and reads its reply; an error reply is an `Err`.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        let mut out = Vec::new();
        encode(&mut out, args);
        self.writer.write_all(&out)?;
        match self.read()? {
            Value::Error(e) => Err(io::Error::other(e)),
            v => Ok(v),
        }
    }

    /// Text arguments version of [`Conn::call`].
    pub fn cmd(&mut self, args: &[&str]) -> io::Result<Value> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&raw)
    }

    /// Writes pre-encoded commands.
    pub fn send(&mut self, encoded: &[u8]) -> io::Result<()> {
        self.writer.write_all(encoded)
    }

    /// Reads `n` replies, discarding them; fails on the first error reply.
    pub fn skip(&mut self, n: usize) -> io::Result<()> {
        for _ in 0..n {
            if let Value::Error(e) = self.read()? {
                return Err(io::Error::other(e));
            }
        }
        Ok(())
    }

    /// Sends pre-encoded commands and reads their `n` replies, discarding them.
    pub fn batch(&mut self, encoded: &[u8], n: usize) -> io::Result<()> {
        self.send(encoded)?;
        self.skip(n)
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::with_capacity(32);
        self.reader.read_until(b'\n', &mut line)?;
        if line.len() < 3 || !line.ends_with(b"\r\n") {
            return Err(bad("connection closed or bad line"));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    /// Reads one reply.
    pub fn read(&mut self) -> io::Result<Value> {
        let line = self.line()?;
        let body = &line[1..];
        let number = |b: &[u8]| -> io::Result<i64> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("bad number"))
        };
        match line[0] {
            b'+' => Ok(Value::Str(body.to_vec())),
            b'-' => Ok(Value::Error(String::from_utf8_lossy(body).into_owned())),
            b':' => Ok(Value::Int(number(body)?)),
            b'$' => {
                let len = number(body)?;
                if len < 0 {
                    return Ok(Value::Nil);
                }
                let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0) + 2];
                io::Read::read_exact(&mut self.reader, &mut buf)?;
                buf.truncate(buf.len() - 2);
                Ok(Value::Str(buf))
            }
            b'*' => {
                let len = number(body)?;
                if len < 0 {
                    return Ok(Value::Nil);
                }
                let mut items = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                for _ in 0..len {
                    items.push(self.read()?);
                }
                Ok(Value::Array(items))
            }
            _ => Err(bad("unknown reply type")),
        }
    }
}
