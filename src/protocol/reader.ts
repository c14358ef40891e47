import { shortString } from './shortstr-cache';
import { AmqpError } from './errors';
import { RAW_SECONDS } from './types';
import { FRAME_ERROR } from './constants';
import {
  Decimal,
  MAX_FIELD_DEPTH,
  defineEntry,
  inferredNumberType,
  wireTypesFor,
  type FieldTable,
  type FieldValue,
  type WireTypeRecord,
} from './types';

/**
 * A cursor over one frame payload. Bounds are checked explicitly so that a truncated
 * or lying frame surfaces as RabbitMQ's 501 "cannot decode" rather than a RangeError deep inside.
 */
export class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  /** How many tables and arrays enclose the one being read. */
  private depth = 0;

  reset(buf: Buffer, pos = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.depth = 0;
    return this;
  }

  /**
   * Entering a table or array: refused past MAX_FIELD_DEPTH as a frame that cannot be
   * decoded, the way a malformed table is. Leaving is `depth--`; a throw leaves the count
   * high, which is harmless because every read starts with reset().
   */
  private enter(): void {
    if (this.depth >= MAX_FIELD_DEPTH + 1)
      throw new AmqpError(FRAME_ERROR, `cannot decode: field table nested deeper than ${MAX_FIELD_DEPTH} levels`);
    this.depth++;
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
    const s = shortString(this.buf, this.pos, len);
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
    const s = shortString(this.buf, this.pos, len);
    this.pos += len;
    return s;
  }
  /**
   * A field table. Each entry whose wire type the writer would not infer from its JS value
   * (a byte, a float, a long holding a small number, an integral double...) has its tag
   * recorded under WIRE_TYPES, so the table re-encodes to the same bytes.
   */
  table(): FieldTable {
    this.enter();
    const len = this.u32();
    this.need(len);
    const stop = this.pos + len;
    const t: FieldTable = {};
    let types: WireTypeRecord | undefined;
    while (this.pos < stop) {
      const key = this.shortstr();
      const tag = this.u8();
      const value = this.valueOfType(tag);
      defineEntry(t, key, value);
      if (typeof value !== 'number' || numberTagInferred(tag, value)) {
        // A repeated key keeps only its last value, and so only that value's tag.
        if (types !== undefined) delete types[key];
      } else {
        (types ??= wireTypesFor(t))[key] = String.fromCharCode(tag);
      }
    }
    if (this.pos !== stop) throw new AmqpError(FRAME_ERROR, 'cannot decode: field table overruns its length');
    this.depth--;
    return t;
  }
  /** A field array; element tags are recorded by index, as for tables. */
  array(): FieldValue[] {
    this.enter();
    const len = this.u32();
    this.need(len);
    const stop = this.pos + len;
    const a: FieldValue[] = [];
    let types: WireTypeRecord | undefined;
    while (this.pos < stop) {
      const tag = this.u8();
      const value = this.valueOfType(tag);
      if (typeof value === 'number' && !numberTagInferred(tag, value)) (types ??= wireTypesFor(a))[a.length] = String.fromCharCode(tag);
      a.push(value);
    }
    if (this.pos !== stop) throw new AmqpError(FRAME_ERROR, 'cannot decode: field array overruns its length');
    this.depth--;
    return a;
  }
  fieldValue(): FieldValue {
    return this.valueOfType(this.u8());
  }
  private valueOfType(type: number): FieldValue {
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
        return timestamp(this.i64());
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

const TAG_I = 0x49;
const TAG_L = 0x6c;
const TAG_D = 0x64;

/**
 * Whether the writer's inference gives a decoded number its wire tag back: always for 'I',
 * for 'l' outside the int32 range, for 'd' when not a safe integer; never for b B s u i f.
 */
function numberTagInferred(tag: number, n: number): boolean {
  if (tag === TAG_I) return true;
  if (tag === TAG_L || tag === TAG_D) return inferredNumberType(n).charCodeAt(0) === tag;
  return false;
}

/**
 * A 'T' value as a Date. Seconds beyond what a Date can hold give an invalid Date that
 * keeps the wire value, so that re-encoding it (dead-lettering, say) sends it unchanged.
 */
function timestamp(seconds: number | bigint): Date {
  const d = new Date(Number(seconds) * 1000);
  if (Number.isNaN(d.getTime())) (d as Date & { [RAW_SECONDS]?: bigint })[RAW_SECONDS] = BigInt(seconds);
  return d;
}

/**
 * Whether basic's property flags and list fit in `props` (as after a content header's
 * class, weight and body size): each field the flags announce is there whole. Walked
 * without decoding or allocating, so a publisher's message can be checked when it
 * arrives; properties are otherwise decoded only later, when something looks inside
 * them (a TTL timer dead-lettering it, another connection's reject, the management API),
 * where a short property list must not surface. The headers table is only measured:
 * its contents are decoded at publish (sender-selected distribution reads it).
 */
export function basicPropertiesFit(props: Buffer): boolean {
  const end = props.length;
  if (end < 2) return false;
  const flags = props.readUInt16BE(0);
  let pos = 2;
  for (let more = flags; more & 1; pos += 2) {
    if (pos + 2 > end) return false;
    more = props.readUInt16BE(pos);
  }
  for (let bit = 0x8000; bit >= 0x4; bit >>>= 1) {
    if ((flags & bit) === 0) continue;
    if (pos >= end) return false;
    if (bit === 0x2000) {
      if (pos + 4 > end) return false;
      pos += 4 + props.readUInt32BE(pos);
    } else if (bit === 0x1000 || bit === 0x800) pos += 1;
    else if (bit === 0x40) pos += 8;
    else pos += 1 + props[pos];
    if (pos > end) return false;
  }
  return true;
}
