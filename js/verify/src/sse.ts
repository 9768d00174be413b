// A Server-Sent Events parser (WHATWG HTML §9.2.6), fed text as it arrives. Hand-written:
// the feed needs only `id`, `event` and `data`; comments (heartbeats) dispatch nothing.

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export class SseParser {
  #buf = "";
  #id: string | undefined;
  #event = "";
  #data: string[] = [];
  #hasData = false;

  /** Feeds a chunk; returns the events it completes (a blank line ends one). */
  feed(chunk: string): SseEvent[] {
    this.#buf += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (let nl = this.#buf.indexOf("\n", start); nl >= 0; nl = this.#buf.indexOf("\n", start)) {
      let line = this.#buf.slice(start, nl);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      start = nl + 1;
      const e = this.#line(line);
      if (e) out.push(e);
    }
    this.#buf = this.#buf.slice(start);
    return out;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") {
      const e = { id: this.#id, event: this.#event || "message", data: this.#data.join("\n") };
      const dispatch = this.#hasData;
      this.#event = "";
      this.#data = [];
      this.#hasData = false;
      return dispatch ? e : undefined;
    }
    if (line.startsWith(":")) return undefined; // a heartbeat, or the server's reason for ending
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id" && !value.includes("\0")) this.#id = value;
    else if (field === "event") this.#event = value;
    else if (field === "data") {
      this.#data.push(value);
      this.#hasData = true;
    }
    return undefined;
  }
}
