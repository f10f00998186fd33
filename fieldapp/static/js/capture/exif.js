// A small, dependency-free EXIF reader for JPEG photos taken in the field.
//
// readExif(arrayBuffer) → {takenAt, offset, make, model, orientation, latE6, lonE6, gpsAccuracyM}
//
//   takenAt       "YYYY-MM-DDTHH:MM:SS" exactly as the camera wrote it (local time, no zone), from
//                 DateTimeOriginal (0x9003), else DateTime (0x0132); null if absent or malformed
//   offset        "+08:00" from the matching OffsetTimeOriginal (0x9011) or OffsetTime (0x9010);
//                 null if absent, malformed or when there is no takenAt
//   make, model   trimmed strings or null
//   orientation   integer 1–8 or null
//   latE6, lonE6  integer micro-degrees, rounded half away from zero, negative for S / W; null when
//                 absent, when the hemisphere reference is missing, out of range, or exactly 0,0
//                 (cameras without a fix write zeros)
//   gpsAccuracyM  GPSHPositioningError (0x001F) rounded to whole metres, or null
//
// The result holds no floating-point numbers (records are signed as canonical JSON): rationals are
// evaluated exactly with BigInt. It never throws: corrupt, truncated or non-JPEG input gives an
// object of nulls (or whatever could be read soundly). All work is bounded: segments are walked
// forwards only, IFD entry counts are capped by the bytes available, and only IFD0, the Exif IFD
// and the GPS IFD are visited (no pointer chasing beyond that, so no cycles).

const MAX_SEGMENTS = 512;
const MAX_STRING = 256;

const TAG = {
  make: 0x010f,
  model: 0x0110,
  orientation: 0x0112,
  dateTime: 0x0132,
  exifIfd: 0x8769,
  gpsIfd: 0x8825,
  dateTimeOriginal: 0x9003,
  offsetTime: 0x9010,
  offsetTimeOriginal: 0x9011,
  gpsLatitudeRef: 0x0001,
  gpsLatitude: 0x0002,
  gpsLongitudeRef: 0x0003,
  gpsLongitude: 0x0004,
  gpsHPositioningError: 0x001f,
};

// Bytes per component of each TIFF field type.
const TYPE_SIZE = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8 };

function emptyResult() {
  return { takenAt: null, offset: null, make: null, model: null, orientation: null,
           latE6: null, lonE6: null, gpsAccuracyM: null };
}

function toBytes(input) {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  return null;
}

export function readExif(arrayBuffer) {
  const result = emptyResult();
  try {
    const bytes = toBytes(arrayBuffer);
    if (!bytes) return result;
    const tiff = findExifTiff(bytes);
    if (!tiff) return result;
    parseTiff(tiff, result);
  } catch (_error) {
    return emptyResult();
  }
  return result;
}

// The TIFF structure inside the first APP1 "Exif\0\0" segment, as a Uint8Array view, or null.
function findExifTiff(bytes) {
  const n = bytes.length;
  if (n < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let pos = 2;
  for (let segments = 0; segments < MAX_SEGMENTS; segments++) {
    if (pos >= n || bytes[pos] !== 0xff) return null;
    while (pos < n && bytes[pos] === 0xff) pos++; // fill bytes
    if (pos >= n) return null;
    const marker = bytes[pos++];
    if (marker === 0xd9 || marker === 0xda) return null; // end of image / start of scan
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length field
    if (pos + 2 > n) return null;
    const length = (bytes[pos] << 8) | bytes[pos + 1];
    if (length < 2) return null;
    const start = pos + 2;
    const end = pos + length;
    if (end > n) return null; // truncated segment: do not guess
    if (marker === 0xe1 && length >= 8 &&
        bytes[start] === 0x45 && bytes[start + 1] === 0x78 && bytes[start + 2] === 0x69 &&
        bytes[start + 3] === 0x66 && bytes[start + 4] === 0 && bytes[start + 5] === 0) {
      return bytes.subarray(start + 6, end);
    }
    pos = end;
  }
  return null;
}

function parseTiff(t, result) {
  if (t.length < 8) return;
  let little;
  if (t[0] === 0x49 && t[1] === 0x49) little = true;
  else if (t[0] === 0x4d && t[1] === 0x4d) little = false;
  else return;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const u16 = (o) => (o >= 0 && o + 2 <= t.length ? view.getUint16(o, little) : null);
  const u32 = (o) => (o >= 0 && o + 4 <= t.length ? view.getUint32(o, little) : null);
  if (u16(2) !== 42) return;

  // One IFD as Map(tag → {type, count, at}) where `at` is the offset of the value bytes.
  function readIfd(offset) {
    const entries = new Map();
    if (offset === null || offset < 8) return entries;
    const count = u16(offset);
    if (count === null) return entries;
    const fits = Math.floor((t.length - offset - 2) / 12);
    const total = Math.min(count, fits);
    for (let i = 0; i < total; i++) {
      const e = offset + 2 + i * 12;
      const tag = u16(e);
      const type = u16(e + 2);
      const n = u32(e + 4);
      const size = TYPE_SIZE[type];
      if (!size || n === null || entries.has(tag)) continue;
      const byteLength = size * n;
      const at = byteLength <= 4 ? e + 8 : u32(e + 8);
      if (at === null || at + byteLength > t.length) continue;
      entries.set(tag, { type, count: n, at });
    }
    return entries;
  }

  function ascii(entries, tag) {
    const e = entries.get(tag);
    if (!e || (e.type !== 2 && e.type !== 1 && e.type !== 7)) return null;
    let end = e.at;
    const limit = e.at + Math.min(e.count, MAX_STRING * 4);
    while (end < limit && t[end] !== 0) end++;
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: false }).decode(t.subarray(e.at, end));
    } catch (_error) {
      return null;
    }
    text = text.replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, MAX_STRING);
    return text || null;
  }

  function integer(entries, tag) {
    const e = entries.get(tag);
    if (!e || e.count < 1) return null;
    if (e.type === 3) return u16(e.at);
    if (e.type === 4) return u32(e.at);
    return null;
  }

  // The i-th unsigned rational as [BigInt numerator, BigInt denominator], or null.
  function rational(e, i) {
    if (!e || (e.type !== 5 && e.type !== 10) || i >= e.count) return null;
    const o = e.at + i * 8;
    let num, den;
    if (e.type === 5) { num = u32(o); den = u32(o + 4); }
    else { num = view.getInt32(o, little); den = view.getInt32(o + 4, little); }
    if (num === null || den === null || den === 0 || num < 0 || den < 0) return null;
    return [BigInt(num), BigInt(den)];
  }

  const ifd0 = readIfd(u32(4));
  result.make = ascii(ifd0, TAG.make);
  result.model = ascii(ifd0, TAG.model);
  const orientation = integer(ifd0, TAG.orientation);
  result.orientation = orientation !== null && orientation >= 1 && orientation <= 8 ? orientation : null;

  const exifPointer = integer(ifd0, TAG.exifIfd);
  const exif = exifPointer !== null ? readIfd(exifPointer) : new Map();
  let takenAt = dateTime(ascii(exif, TAG.dateTimeOriginal));
  let offset = null;
  if (takenAt) {
    offset = zoneOffset(ascii(exif, TAG.offsetTimeOriginal));
  } else {
    takenAt = dateTime(ascii(ifd0, TAG.dateTime));
    if (takenAt) offset = zoneOffset(ascii(exif, TAG.offsetTime));
  }
  result.takenAt = takenAt;
  result.offset = offset;

  const gpsPointer = integer(ifd0, TAG.gpsIfd);
  if (gpsPointer === null) return;
  const gps = readIfd(gpsPointer);
  const lat = coordinate(gps.get(TAG.gpsLatitude), ascii(gps, TAG.gpsLatitudeRef), "N", "S", 90_000_000n);
  const lon = coordinate(gps.get(TAG.gpsLongitude), ascii(gps, TAG.gpsLongitudeRef), "E", "W", 180_000_000n);
  if (lat !== null && lon !== null && !(lat === 0 && lon === 0)) {
    result.latE6 = lat;
    result.lonE6 = lon;
  }
  const error = rational(gps.get(TAG.gpsHPositioningError), 0);
  if (error) {
    const metres = roundDiv(error[0], error[1]);
    if (metres <= 10_000_000n) result.gpsAccuracyM = Number(metres);
  }

  // Degrees, minutes, seconds → integer micro-degrees, computed exactly.
  function coordinate(entry, ref, positive, negative, limit) {
    if (!entry || !ref) return null;
    const hemisphere = ref.toUpperCase()[0];
    if (hemisphere !== positive && hemisphere !== negative) return null;
    const parts = [];
    for (let i = 0; i < 3; i++) {
      if (i >= entry.count) { parts.push([0n, 1n]); continue; }
      const r = rational(entry, i);
      if (!r) return null;
      parts.push(r);
    }
    const [[dn, dd], [mn, md], [sn, sd]] = parts;
    const den = dd * md * sd * 3600n;
    const num = 1_000_000n * (dn * md * sd * 3600n + mn * dd * sd * 60n + sn * dd * md);
    const micro = roundDiv(num, den);
    if (micro > limit) return null;
    return Number(hemisphere === negative ? -micro : micro);
  }
}

// Non-negative BigInt division rounded half up.
function roundDiv(num, den) {
  return (2n * num + den) / (2n * den);
}

function dateTime(text) {
  if (!text) return null;
  const m = /^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1).map((s) => parseInt(s, 10));
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return null;
  }
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}`;
}

function zoneOffset(text) {
  if (!text) return null;
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(text);
  if (!m || parseInt(m[2], 10) > 14 || parseInt(m[3], 10) > 59) return null;
  return text;
}
