// The server side of RFC 6455, just what Socket Mode needs: text frames both ways, pings
// answered with pongs, the close handshake, and an abrupt drop on demand. Written here because
// `ws` is not installed (socket-mode 3.x uses undici's client), and owning the socket is what
// lets the emulator drop it without a close frame.

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
const CLOSE_REPLY_GRACE_MS = 1000;

const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export const CLOSE_CODE = { normal: 1000, protocolError: 1002, noStatus: 1005, tooBig: 1009 } as const;

export interface Frame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
  /** Bytes the frame took in the stream. */
  readonly size: number;
}

export interface WebSocketHandlers {
  readonly onText: (text: string) => void;
  readonly onClose: () => void;
  /** A client ping was answered with a pong. */
  readonly onPing?: () => void;
}

/** Parses one client frame from the front of `buffer`: undefined if incomplete, Error if invalid. */
export function readClientFrame(buffer: Buffer): Frame | Error | undefined {
  if (buffer.length < 2) return undefined;
  const first = buffer.readUInt8(0);
  const second = buffer.readUInt8(1);
  if ((first & 0x70) !== 0) return new Error('reserved bits set without a negotiated extension');
  if ((second & 0x80) === 0) return new Error('client frames must be masked');
  const fin = (first & 0x80) !== 0;
  const opcode = first & 0x0f;
  let length = second & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return undefined;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return undefined;
    const big = buffer.readBigUInt64BE(2);
    if (big > BigInt(MAX_PAYLOAD_BYTES)) return new Error(`frame of ${big} bytes is too large`);
    length = Number(big);
    offset = 10;
  }
  if (length > MAX_PAYLOAD_BYTES) return new Error(`frame of ${length} bytes is too large`);
  if (opcode >= OPCODE.close && (!fin || length > 125)) {
    return new Error('control frames must be whole and short');
  }
  const size = offset + 4 + length;
  if (buffer.length < size) return undefined;
  const mask = buffer.subarray(offset, offset + 4);
  const payload = Buffer.from(buffer.subarray(offset + 4, size));
  for (let index = 0; index < payload.length; index += 1) {
    payload.writeUInt8(payload.readUInt8(index) ^ mask.readUInt8(index & 3), index);
  }
  return { fin, opcode, payload, size };
}

/** A server frame (servers never mask). */
export function encodeServerFrame(opcode: number, payload: Buffer): Buffer {
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, payload.length]);
  } else if (payload.length < 0x10000) {
    header = Buffer.alloc(4);
    header.writeUInt8(0x80 | opcode, 0);
    header.writeUInt8(126, 1);
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header.writeUInt8(0x80 | opcode, 0);
    header.writeUInt8(127, 1);
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}

export class WebSocketConnection {
  readonly #socket: Duplex;
  readonly #handlers: WebSocketHandlers;
  #buffer: Buffer = Buffer.alloc(0);
  #fragments: Buffer[] | undefined;
  #fragmentOpcode: number = OPCODE.text;
  #closeSent = false;
  #closed = false;

  constructor(socket: Duplex, handlers: WebSocketHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('close', () => this.#markClosed());
    // A reset peer emits 'error' then 'close'; 'close' does the bookkeeping.
    socket.on('error', () => undefined);
  }

  /** Open and not closing: frames sent now reach the peer's message handler. */
  get isOpen(): boolean {
    return !this.#closed && !this.#closeSent;
  }

  sendText(text: string): void {
    if (!this.isOpen) throw new Error('the WebSocket is not open');
    this.#socket.write(encodeServerFrame(OPCODE.text, Buffer.from(text, 'utf8')));
  }

  /** Starts the close handshake; the TCP socket goes after the peer's reply or a short grace. */
  close(code: number = CLOSE_CODE.normal, reason = ''): void {
    if (this.#closed || this.#closeSent) return;
    this.#sendClose(code, reason);
    setTimeout(() => this.destroy(), CLOSE_REPLY_GRACE_MS).unref();
  }

  /** Drops the connection with no close frame, like a network failure. */
  destroy(): void {
    this.#socket.destroy();
    this.#markClosed();
  }

  feed(head: Buffer): void {
    if (head.length > 0) this.#receive(head);
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (!this.#closed) {
      const frame = readClientFrame(this.#buffer);
      if (frame === undefined) return;
      if (frame instanceof Error) {
        this.#fail(CLOSE_CODE.protocolError, frame.message);
        return;
      }
      this.#buffer = this.#buffer.subarray(frame.size);
      this.#handle(frame);
    }
  }

  #handle(frame: Frame): void {
    switch (frame.opcode) {
      case OPCODE.text:
      case OPCODE.binary:
        if (this.#fragments !== undefined) {
          this.#fail(CLOSE_CODE.protocolError, 'new message while a fragmented one is open');
          return;
        }
        if (frame.fin) {
          this.#deliver(frame.opcode, frame.payload);
          return;
        }
        this.#fragments = [frame.payload];
        this.#fragmentOpcode = frame.opcode;
        return;
      case OPCODE.continuation: {
        if (this.#fragments === undefined) {
          this.#fail(CLOSE_CODE.protocolError, 'continuation frame without a message');
          return;
        }
        this.#fragments.push(frame.payload);
        if (!frame.fin) return;
        const whole = Buffer.concat(this.#fragments);
        this.#fragments = undefined;
        this.#deliver(this.#fragmentOpcode, whole);
        return;
      }
      case OPCODE.ping:
        if (!this.#closeSent) {
          this.#socket.write(encodeServerFrame(OPCODE.pong, frame.payload));
          this.#handlers.onPing?.();
        }
        return;
      case OPCODE.pong:
        return;
      case OPCODE.close: {
        // Echo the peer's close (unless we started it), then hang up: the server closes TCP first.
        if (!this.#closeSent) {
          const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : CLOSE_CODE.noStatus;
          this.#sendClose(code === CLOSE_CODE.noStatus ? undefined : code, '');
        }
        this.#socket.end();
        this.#markClosed();
        return;
      }
      default:
        this.#fail(CLOSE_CODE.protocolError, `unknown opcode ${frame.opcode}`);
    }
  }

  #deliver(opcode: number, payload: Buffer): void {
    // Socket Mode speaks JSON text only; the client ignores binary, so does the server.
    if (opcode === OPCODE.text) this.#handlers.onText(payload.toString('utf8'));
  }

  #sendClose(code: number | undefined, reason: string): void {
    this.#closeSent = true;
    let payload = Buffer.alloc(0);
    if (code !== undefined) {
      const reasonBytes = Buffer.from(reason, 'utf8').subarray(0, 123);
      payload = Buffer.alloc(2 + reasonBytes.length);
      payload.writeUInt16BE(code, 0);
      reasonBytes.copy(payload, 2);
    }
    this.#socket.write(encodeServerFrame(OPCODE.close, payload));
  }

  #fail(code: number, reason: string): void {
    if (!this.#closeSent) this.#sendClose(code, reason);
    this.#socket.end();
    this.#markClosed();
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.onClose();
  }
}

/** Completes the opening handshake, or answers 400 and returns undefined. */
export function acceptWebSocket(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  handlers: WebSocketHandlers,
): WebSocketConnection | undefined {
  const key = request.headers['sec-websocket-key'];
  const isUpgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
  if (request.method !== 'GET' || !isUpgrade || typeof key !== 'string' || key.length === 0) {
    rejectUpgrade(socket, 400, 'Bad Request');
    return undefined;
  }
  const accept = createHash('sha1').update(`${key}${ACCEPT_GUID}`).digest('base64');
  // No Sec-WebSocket-Extensions in the reply: permessage-deflate stays off, frames stay plain.
  socket.write(
    [
      'HTTP/1.1 101 Switching Protocols',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept}`,
      '',
      '',
    ].join('\r\n'),
  );
  if (socket instanceof Socket) socket.setNoDelay(true);
  const connection = new WebSocketConnection(socket, handlers);
  connection.feed(head);
  return connection;
}

export function rejectUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
