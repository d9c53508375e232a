// Differential check of clusterwire against notepack.io (see notepack_diff_test.go).
// Usage: node notepack_diff.js <path of the notepack.io package> <values> <random inputs>
// Prints one line per message: <hex of the msgpack> <base64 of JSON.stringify(decode(msgpack))>,
// random inputs prefixed with R and ERR as the JSON when notepack.io throws.
const n = require(require('path').resolve(process.argv[2]));
const nValues = +process.argv[3], nRandom = +process.argv[4];
// Integers beyond ±2^63 (which notepack.io garbles) and invalid dates (which it writes as the epoch) are not generated.
let seed = 12345;
function rnd() { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; }
function ri(k) { return Math.floor(rnd() * k); }
const specials = [0, -0, 1, -1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2**32-1, 2**32, 2**53, 2**63, 2**64-2**11, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31)-1, -(2**53), -(2**63), 1.5, 0.1, -2.5e-300, 1e21, 1e-7, NaN, Infinity, -Infinity, 5e-324];
function str() { const len = [0,1,5,31,32,33,255,256][ri(8)]; let s=''; const pool='aé✓😀\u0000"\\\n\u2028'; for (let i=0;i<len;i++) s+= rnd()<0.8 ? String.fromCharCode(97+ri(26)) : [...pool][ri(pool.length-1)]; return s; }
function val(d) {
  const k = ri(d > 3 ? 8 : 12);
  switch (k) {
    case 0: return specials[ri(specials.length)];
    case 1: return ri(2**31) * (rnd()<0.5?-1:1) * (rnd()<0.3 ? 2**ri(22) : 1);
    case 2: { const x = (rnd()-0.5) * 10 ** ri(30); return Math.abs(x) < 2**63 || !Number.isInteger(x) ? x : 1.5; }
    case 3: return str();
    case 4: return [true,false,null][ri(3)];
    case 5: return Buffer.from(Array.from({length: [0,1,3,255,256][ri(5)]}, () => ri(256)));
    case 6: { const c = [0,1000,-1,1.5e12+123,2**32*1000,2**34*1000,8.64e15,-8.64e15,ri(2**40)-2**39][ri(9)]; return new Date(c); }
    case 7: return undefined;
    case 8: case 9: { const a = []; const len = [0,1,2,15,16,17][ri(6)]; for (let i=0;i<len;i++) a.push(val(d+1)); return a; }
    default: { const o = {}; const len = [0,1,2,15,16][ri(5)]; for (let i=0;i<len;i++) o[rnd()<0.1 ? String(ri(100)) : str()] = val(d+1); return o; }
  }
}
const out = [];
for (let i = 0; i < nValues; i++) {
  const v = val(0);
  const enc = n.encode(v);
  let dec, js;
  dec = n.decode(enc);
  js = JSON.stringify(dec === undefined ? null : dec);
  out.push(enc.toString('hex') + ' ' + Buffer.from(js).toString('base64'));
}
// random byte strings
for (let i = 0; i < nRandom; i++) {
  const len = 1 + ri(12);
  const b = Buffer.from(Array.from({length: len}, () => rnd() < 0.5 ? ri(256) : [0x80,0x90,0xa0,0xc0,0xc4,0xc7,0xd4,0xd6,0xd7,0xd9,0xdc,0xde,0xff,0x00,0x01,0xcb][ri(16)]));
  let js;
  try { const d = n.decode(b); js = JSON.stringify(d === undefined ? null : d); if (js === undefined) js = 'undefined'; } catch (e) { js = 'ERR'; }
  out.push('R' + b.toString('hex') + ' ' + Buffer.from(js).toString('base64'));
}
process.stdout.write(out.join('\n') + '\n');
