import { AmqpError } from './errors';
import { FRAME_ERROR } from './constants';
import { Decimal, type FieldTable, type FieldValue } from './types';

/**
 * A cursor over one frame payload. Bounds are checked explicitly so that a truncated
 * or lying frame surfaces as RabbitMQ's 501 "cannot decode" rather than a RangeError deep inside.
 */
export class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;

  reset(buf: Buffer, pos = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new AmqpError(FRAME_ERROR, 'cannot decode: frame too short for its fields');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  i8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** Unsigned 64-bit as a number: delivery tags never get near 2^53. */
  u64(): number {
    this.need(8);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }
  i64(): number | bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  }
  f32(): number {
    this.need(4);
    const v = this.buf.readFloatBE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
  shortstr(): string {
    const len = this.u8();
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  longstrBytes(): Buffer {
    const len = this.u32();
    this.need(len);
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  longstr(): string {
    const len = this.u32();
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  table(): FieldTable {
    const len = this.u32();
    this.need(len);
    const stop = this.pos + len;
    const t: FieldTable = {};
    while (this.pos < stop) {
      const key = this.shortstr();
      const value = this.fieldValue();
      // A key named __proto__ must stay a key, not replace the table's prototype.
      if (key === '__proto__') Object.defineProperty(t, key, { value, enumerable: true, writable: true, configurable: true });
      else t[key] = value;
    }
    if (this.pos !== stop) throw new AmqpError(FRAME_ERROR, 'cannot decode: field table overruns its length');
    return t;
  }
  array(): FieldValue[] {
    const len = this.u32();
    this.need(len);
    const stop = this.pos + len;
    const a: FieldValue[] = [];
    while (this.pos < stop) a.push(this.fieldValue());
    if (this.pos !== stop) throw new AmqpError(FRAME_ERROR, 'cannot decode: field array overruns its length');
    return a;
  }
  fieldValue(): FieldValue {
    const type = this.u8();
    switch (type) {
      case 0x74: // t
        return this.u8() !== 0;
      case 0x62: // b
        return this.i8();
      case 0x42: // B
        return this.u8();
      case 0x73: // s (RabbitMQ: signed 16-bit)
        return this.i16();
      case 0x75: // u
        return this.u16();
      case 0x49: // I
        return this.i32();
      case 0x69: // i
        return this.u32();
      case 0x6c: // l
        return this.i64();
      case 0x66: // f
        return this.f32();
      case 0x64: // d
        return this.f64();
      case 0x44: {
        // D
        const scale = this.u8();
        return new Decimal(scale, this.i32());
      }
      case 0x53: // S
        return this.longstr();
      case 0x41: // A
        return this.array();
      case 0x54: // T
        return new Date(Number(this.i64()) * 1000);
      case 0x46: // F
        return this.table();
      case 0x56: // V
        return null;
      case 0x78: // x
        return Buffer.from(this.longstrBytes());
      default:
        throw new AmqpError(FRAME_ERROR, `cannot decode: unknown field type '${String.fromCharCode(type)}'`);
    }
  }
}
