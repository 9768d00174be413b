//! The chunked transfer coding (RFC 9112 §7.1) a stream's events are written in.

use std::io;

use tokio::net::TcpStream;

/// A chunk this long or shorter (every event's frame) is framed on the stack.
const INLINE_CHUNK: usize = 1024;

/// Writes `data` as one chunk of the chunked transfer coding (RFC 9112 §7.1). An event
/// is one write framed on the stack when the socket takes it whole (the usual case):
/// nothing allocated per delivery; what it does not take is written from the heap.
pub(super) async fn write_chunk(tcp: &TcpStream, data: &[u8]) -> io::Result<()> {
    let written = try_chunk(tcp, data)?;
    if written == chunk_len(data) {
        return Ok(());
    }
    // Boxed: rare, and a stream's future (held for its life) is sized by its largest state.
    Box::pin(write_rest(tcp, &chunk(data)[written..])).await
}

/// Writes all of `data` to a socket shared with the feed's lane (which writes to it
/// only while the stream is parked, never at the same time): at once if the socket
/// takes it, else waiting for room on a boxed future, so that the future of a stream,
/// held for its life, is not sized by a wait it rarely makes.
pub(super) async fn write_all(tcp: &TcpStream, data: &[u8]) -> io::Result<()> {
    let written = match tcp.try_write(data) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if written == data.len() {
        return Ok(());
    }
    Box::pin(write_rest(tcp, &data[written..])).await
}

async fn write_rest(tcp: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match tcp.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => tcp.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes what the socket takes now of `data` as a chunk, if it is short enough to frame
/// on the stack; returns how many of the chunk's bytes went out (0 if none, or if longer).
fn try_chunk(tcp: &TcpStream, data: &[u8]) -> io::Result<usize> {
    if data.len() > INLINE_CHUNK {
        return Ok(0);
    }
    let mut buf = [0u8; INLINE_CHUNK + 32];
    let len = frame_chunk(data, &mut buf);
    match tcp.try_write(&buf[..len]) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// The length of `data` as a chunk: its size in hex, CRLF, the data, CRLF.
fn chunk_len(data: &[u8]) -> usize {
    hex_digits(data.len()) + data.len() + 4
}

fn hex_digits(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).div_ceil(4).max(1) as usize
}

/// Frames `data` as a chunk into `out` (at least [`chunk_len`] long); returns its length.
fn frame_chunk(data: &[u8], out: &mut [u8]) -> usize {
    let digits = hex_digits(data.len());
    for (i, b) in out[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - i);
        *b = b"0123456789abcdef"[(data.len() >> shift) & 0xf];
    }
    let mut at = digits;
    out[at..at + 2].copy_from_slice(b"\r\n");
    at += 2;
    out[at..at + data.len()].copy_from_slice(data);
    at += data.len();
    out[at..at + 2].copy_from_slice(b"\r\n");
    at + 2
}

/// `data` as one chunk, on the heap.
pub(crate) fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk_len(data));
    extend_chunk(&mut out, data);
    out
}

/// Appends `data` as one chunk to `out`.
pub(crate) fn extend_chunk(out: &mut Vec<u8>, data: &[u8]) {
    let at = out.len();
    out.resize(at + chunk_len(data), 0);
    frame_chunk(data, &mut out[at..]);
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;

    /// A writer whose socket is full: what the quick write did not take is written
    /// once the socket drains, and the reader gets every chunk whole and in order.
    #[tokio::test]
    async fn chunks_the_socket_takes_in_part_arrive_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        let mut writer = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut reader, _) = listener.accept().await.unwrap();
        let frames: Vec<Vec<u8>> = (0..4000u32)
            .map(|i| format!("id: {i}\ndata: {}\n\n", "x".repeat(200 + (i % 97) as usize)))
            .map(String::into_bytes)
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| chunk(f)).collect();
        let mut write = Box::pin(async {
            for f in &frames {
                write_chunk(&writer, f).await.unwrap();
            }
            tokio::io::AsyncWriteExt::shutdown(&mut writer)
                .await
                .unwrap();
        });
        // Nothing read yet: the quick writes fill the socket (1 MB against its buffers)
        // until one waits, on the path that writes what the socket did not take.
        let waited = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx).is_pending()));
        assert!(waited.await, "the socket never filled");
        let mut got = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut got);
        let ((), read) = tokio::join!(write, read);
        read.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the chunks arrived altered");
    }

    #[test]
    fn a_chunk_is_its_length_in_hex_and_the_data() {
        assert_eq!(chunk(b"hello, world"), b"c\r\nhello, world\r\n");
        assert_eq!(chunk(b""), b"0\r\n\r\n");
        let long = vec![b'x'; 0x1a2b];
        let framed = chunk(&long);
        assert!(framed.starts_with(b"1a2b\r\nxx") && framed.ends_with(b"x\r\n"));
        assert_eq!(framed.len(), chunk_len(&long));
    }
}
