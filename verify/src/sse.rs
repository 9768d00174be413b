//! A Server-Sent Events parser (WHATWG HTML §9.2.6), fed bytes as they arrive.
//!
//! Hand-written: the feed needs only `id`, `event` and `data`; comments (heartbeats)
//! are recognised so that the caller can count them as signs of life.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

#[derive(Default)]
pub(crate) struct Parser {
    buf: Vec<u8>,
    id: Option<String>,
    event: String,
    data: String,
    has_data: bool,
}

impl Parser {
    /// Feeds a chunk; returns the events it completes (a blank line ends one).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            if let Some(e) = self.line(&line) {
                out.push(e);
            }
        }
        self.buf.drain(..start);
        out
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            return Some(SseEvent {
                id: self.id.clone(),
                event: if event.is_empty() {
                    "message".into()
                } else {
                    event
                },
                data,
            });
        }
        if line.starts_with(':') {
            return None; // a comment: a heartbeat, or the server's reason for ending
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = Parser::default();
        assert!(p.feed(b": keep-alive\n\nid: 7\nevent: user.dis").is_empty());
        let got = p.feed(b"abled\ndata: {\"a\":\r\ndata: 1}\n\n");
        assert_eq!(
            got,
            vec![SseEvent {
                id: Some("7".into()),
                event: "user.disabled".into(),
                data: "{\"a\":\n1}".into(),
            }]
        );
    }

    #[test]
    fn the_id_persists_and_comments_or_empty_blocks_dispatch_nothing() {
        let mut p = Parser::default();
        let got = p.feed(b"id: 3\n\n: bye\n\ndata: x\n\nid:4\ndata:y\n\n");
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].id.as_deref(), got[0].event.as_str()),
            (Some("3"), "message")
        );
        assert_eq!(
            (got[1].id.as_deref(), got[1].data.as_str()),
            (Some("4"), "y")
        );
    }

    #[test]
    fn an_unterminated_event_waits_for_its_blank_line() {
        let mut p = Parser::default();
        assert!(p.feed(b"id: 1\ndata: {}\n").is_empty());
        assert_eq!(p.feed(b"\n").len(), 1);
    }
}
