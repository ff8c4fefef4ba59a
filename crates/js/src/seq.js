// Sequencing units: steps and triggers on the transport's clock.
//
// Loaded after dsp.js, in the same wrapper and under the same rules: plain functions in
// the compiler's subset, made while the file loads, called once per frame, state in
// slots(n). They read `clock` (a parameter of the wrapper), so every signal that uses
// them is on the same grid, to the frame. A trigger is 1 on the one frame where the beat
// reaches a step's start, else 0.

// The swing of the step units made from here on in this load (see swing()).
let SWING = 0;

function seqNumber(what, x, low) {
  if (typeof x !== 'number' || !(x > low) || x === Infinity) {
    const shown = typeof x === 'number' ? String(x) : typeof x;
    throw new RangeError(what + ' must be a number above ' + low + ', not ' + shown);
  }
  return x;
}

// The step that beat `b` falls in, on a grid of `step` beats. With swing `sw`, each odd
// step starts `sw` of a step late (the even one before it is that much longer). The small
// bias keeps a beat that lands on a step's start, up to rounding, in that step.
function stepOf(b, step, sw) {
  const u = b / step + 1e-9;
  if (sw === 0) return Math.floor(u);
  const pair = Math.floor(u / 2);
  return 2 * pair + (u - 2 * pair >= 1 + sw ? 1 : 0);
}

// 1 when the step changed since the last frame; on a unit's first frame, when the step
// starts on this very frame. Slots: s (last step), s + 1 (1 once running).
function stepped(s, step, sw) {
  const b = clock.beat;
  const idx = stepOf(b, step, sw);
  let on = 0;
  if (mem[s + 1] === 0) {
    mem[s + 1] = 1;
    if (idx !== stepOf(b - clock.bpm / (60 * SR), step, sw)) on = 1;
  } else if (idx !== mem[s]) {
    on = 1;
  }
  mem[s] = idx;
  return on;
}

// swing(amount): the step units made after it in this load swing: each odd step (the
// 2nd, 4th... of `stepBeats`) starts `amount` of a step late. 0 is straight, 1/3 a
// triplet shuffle; clamped to 0..0.75. swing(0) turns it off again.
function swing(amount) {
  if (typeof amount !== 'number' || !(amount >= 0)) {
    throw new RangeError('swing(amount): amount must be a number from 0 to 0.75, not ' + amount);
  }
  SWING = Math.min(amount, 0.75);
  return SWING;
}

// seq(values, stepBeats): a unit whose call gives the value of the current step, a new
// one every `stepBeats` beats, round and round: `const n = seq([60, 63, 67], 0.5)`, then
// `n()` in update.
function seq(values, stepBeats) {
  if (!Array.isArray(values) || values.length === 0) {
    throw new TypeError('seq(values, stepBeats): values must be a non-empty array of numbers');
  }
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== 'number') {
      throw new TypeError('seq(values, stepBeats): values[' + i + '] is not a number');
    }
  }
  const list = values.slice();
  const n = list.length;
  const step = seqNumber('seq(values, stepBeats): stepBeats', stepBeats, 0);
  const sw = SWING;
  const s = slots(1);
  return () => {
    const idx = stepOf(clock.beat, step, sw);
    mem[s] = idx;
    return list[((idx % n) + n) % n];
  };
}

// every(beats): a unit whose call gives a trigger on each multiple of `beats` (beat 0
// included): `every(1)` on every beat, `every(4)` on each bar line of 4/4.
function every(beats) {
  const step = seqNumber('every(beats): beats', beats, 0);
  const sw = SWING;
  const s = slots(2);
  return () => stepped(s, step, sw);
}

// euclid(pulses, steps, stepBeats, rotate?): a unit whose call gives a trigger on each
// onset of the Euclidean rhythm of `pulses` onsets spread over `steps` steps of
// `stepBeats` beats: E(3, 8) is x..x..x. (step i is an onset when i * pulses mod steps <
// pulses). `rotate` starts the pattern that many steps later.
function euclid(pulses, steps, stepBeats, rotate) {
  const k = Math.floor(seqNumber('euclid(pulses, steps, ...): steps', steps, 0));
  if (k < 1) throw new RangeError('euclid(pulses, steps, ...): steps must be 1 or more, not ' + steps);
  if (typeof pulses !== 'number' || !(pulses >= 0 && pulses <= k)) {
    throw new RangeError('euclid(pulses, steps, ...): pulses must be a number from 0 to ' + k + ', not ' + pulses);
  }
  if (k > 4096) throw new RangeError('euclid(pulses, steps, ...): steps must be at most 4096, not ' + k);
  const p = Math.floor(pulses);
  const step = seqNumber('euclid(pulses, steps, stepBeats): stepBeats', stepBeats, 0);
  const r = rotate === undefined ? 0 : Math.floor(rotate);
  if (!(r === r && Math.abs(r) < Infinity)) {
    throw new RangeError('euclid(..., rotate): rotate must be a whole number of steps, not ' + rotate);
  }
  const pattern = [];
  for (let i = 0; i < k; i++) pattern.push((i * p) % k < p ? 1 : 0);
  const sw = SWING;
  const s = slots(2);
  return () => {
    if (stepped(s, step, sw) === 0) return 0;
    const i = mem[s] + r;
    return pattern[((i % k) + k) % k];
  };
}

// pattern(text, beats?): a unit whose call gives, on the frame each onset of a
// mini-notation pattern starts, the onset's value, and 0 on every other frame. One cycle
// of the pattern lasts `beats` beats (default 4: a bar of 4/4).
//   x        an onset of value 1        60, 0.5  an onset of that value (0 is silent)
//   . or ~   a rest                     [a b c]  the step split into equal parts
//   a*n      a repeated n times in its step (n whole, 1 to 64)
//   <a b c>  one of them per cycle, in turn
// `pattern("x . x [x x]")` fires on beats 0, 2, 3 and 3.5 of each bar.
const PATTERN_MAX_EVENTS = 4096;
const PATTERN_MAX_CYCLES = 64;

function patternError(text, at, what) {
  return new SyntaxError('pattern("' + text + '"): ' + what + ' at character ' + (at + 1));
}

// Parses `text` into a tree: {seq: [steps]}, {alt: [steps]}, {value}, {rest}, each step
// with a repeat count `times`.
function patternParse(text) {
  let at = 0;
  const space = () => { while (at < text.length && /\s/.test(text[at])) at++; };
  function steps(close) {
    const list = [];
    for (;;) {
      space();
      if (at >= text.length) {
        if (close) throw patternError(text, at, "missing '" + close + "'");
        return list;
      }
      const c = text[at];
      if (c === close) { at++; return list; }
      if (c === ']' || c === '>') throw patternError(text, at, "'" + c + "' without its opening");
      list.push(step());
    }
  }
  function step() {
    const c = text[at];
    let node;
    if (c === '[' || c === '<') {
      at++;
      const inner = steps(c === '[' ? ']' : '>');
      if (inner.length === 0) throw patternError(text, at - 1, 'an empty group');
      node = c === '[' ? { seq: inner } : { alt: inner };
    } else if (c === 'x' || c === 'X') {
      at++;
      node = { value: 1 };
    } else if (c === '.' || c === '~') {
      at++;
      node = { rest: true };
    } else {
      const m = /^-?(\d+\.?\d*|\.\d+)(e-?\d+)?/i.exec(text.slice(at));
      if (!m) throw patternError(text, at, "'" + c + "' is not x, a number, '.', '~', '[' or '<'");
      at += m[0].length;
      node = { value: Number(m[0]) };
    }
    node.times = 1;
    if (text[at] === '*') {
      const m = /^\*(\d+)/.exec(text.slice(at));
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 64) {
        throw patternError(text, at, "'*' must be followed by a whole number from 1 to 64");
      }
      node.times = Number(m[1]);
      at += m[0].length;
    }
    return node;
  }
  return { seq: steps(null), times: 1 };
}

function gcd(a, b) { return b === 0 ? a : gcd(b, a % b); }

// After how many cycles the node's onsets repeat (capped past PATTERN_MAX_CYCLES).
function patternPeriod(node) {
  let p = 1;
  if (node.seq || node.alt) {
    for (const child of node.seq || node.alt) {
      const q = patternPeriod(child);
      p = Math.min((p * q) / gcd(p, q), PATTERN_MAX_CYCLES + 1);
    }
    if (node.alt) p = Math.min(p * node.alt.length, PATTERN_MAX_CYCLES + 1);
  }
  // The k-th of n repeats plays in cycle c * n + k. Past the cap the pattern is refused,
  // whatever the repeats would make of it.
  return p > PATTERN_MAX_CYCLES ? p : p / gcd(p, node.times);
}

// The onsets of `node` in its cycle `cycle`, placed in [start, start + length).
function patternOnsets(node, cycle, start, length, out) {
  const n = node.times;
  for (let k = 0; k < n; k++) {
    const c = cycle * n + k;
    const from = start + (length * k) / n;
    const span = length / n;
    if (node.rest) continue;
    if (node.value !== undefined) {
      out.push([from, node.value]);
    } else if (node.seq) {
      const m = node.seq.length;
      for (let i = 0; i < m; i++) patternOnsets(node.seq[i], c, from + (span * i) / m, span / m, out);
    } else {
      const m = node.alt.length;
      patternOnsets(node.alt[c % m], Math.floor(c / m), from, span, out);
    }
    if (out.length > PATTERN_MAX_EVENTS) return;
  }
}

function pattern(text, beats) {
  if (typeof text !== 'string') {
    throw new TypeError('pattern(text, beats): text must be a string, such as "x . x [x x]"');
  }
  const cycleBeats = beats === undefined ? 4 : seqNumber('pattern(text, beats): beats', beats, 0);
  const tree = patternParse(text);
  const cycles = patternPeriod(tree);
  if (cycles > PATTERN_MAX_CYCLES) {
    throw new RangeError('pattern("' + text + '"): it repeats only after more than ' +
      PATTERN_MAX_CYCLES + ' cycles');
  }
  const found = [];
  for (let c = 0; c < cycles; c++) {
    const from = found.length;
    patternOnsets(tree, c, 0, 1, found);
    for (let i = from; i < found.length; i++) found[i][0] = (c + found[i][0]) * cycleBeats;
  }
  if (found.length > PATTERN_MAX_EVENTS) {
    throw new RangeError('pattern("' + text + '"): more than ' + PATTERN_MAX_EVENTS + ' onsets');
  }
  // Onsets in beats from the start of the whole (all cycles), and their values.
  const at = found.map((e) => e[0]);
  const values = found.map((e) => e[1]);
  const n = at.length;
  const whole = cycles * cycleBeats;
  const s = slots(2);
  if (n === 0) return () => 0;
  return () => {
    // How many onsets have started by this frame, counted from beat 0: it goes up by one
    // on each onset's frame (the bias keeps an onset on its frame despite rounding).
    const b = clock.beat + 1e-9;
    const round = Math.floor(b / whole);
    const pos = b - round * whole;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (at[mid] <= pos) lo = mid + 1;
      else hi = mid;
    }
    const count = round * n + lo;
    // The onset that started last (`lo - 1`, in range when lo > 0); `+ 0` makes the read
    // a plain number for the compiler.
    const last = lo > 0 ? values[lo - 1] + 0 : 0;
    let on = 0;
    if (mem[s + 1] === 0) {
      // The first frame fires only when an onset starts on it.
      mem[s + 1] = 1;
      if (lo > 0 && pos - at[lo - 1] < clock.bpm / (60 * SR)) on = last;
    } else if (count !== mem[s]) {
      on = last;
    }
    mem[s] = count;
    return on;
  };
}

const SEQUENCING = { seq, every, euclid, swing, pattern };
