// The Flux JavaScript API, evaluated in every runtime before the signals file.
// `hooks` comes from Rust: block(id) -> idx, log(line), out (Float64Array for render),
// clocks (Float64Array laid out as flux_engine::Clock: the block's t, beat, bar, bpm, and MIDI
// in's note, gate, velocity, bend, one run of frames after another; then MIDI in's values),
// clockLayout (where those values are).
(function (hooks) {
  'use strict';
  const registry = new Map();
  const state = globalThis.FLUX_STATE;
  let loading = true;
  let active = [];
  let ids = [];

  // The place in the user's file that called into the API ("file:line:col").
  function caller() {
    const stack = new Error().stack || '';
    for (const line of stack.split('\n')) {
      const m = /\(?([^\s()]+):(\d+):(\d+)\)?\s*$/.exec(line);
      if (m && m[1] !== '<flux>') return m[1] + ':' + m[2] + ':' + m[3];
    }
    return '';
  }

  function describe(v) {
    if (v === null) return 'null';
    if (v === undefined) return 'undefined';
    if (Array.isArray(v)) return 'an array';
    return typeof v === 'object' ? 'an object' : 'a ' + typeof v;
  }

  // An error that names the flux() call it is about, when the parser found it.
  function apiError(error, site) {
    if (site) error.fluxLocation = site;
    return error;
  }

  function flux(id, factory) {
    const tag = typeof factory === 'function' ? tags.get(factory) : undefined;
    const site = tag === undefined ? '' : hooks.sites[tag[0]] || '';
    if (!loading) throw apiError(new Error('flux() can only be called while the file loads'), site);
    if (typeof id !== 'string' || id === '') {
      throw apiError(new TypeError('flux(id, factory): id must be a non-empty string, not ' + describe(id)), site);
    }
    if (typeof factory !== 'function') {
      throw new TypeError("flux('" + id + "', factory): factory must be a function, not " + describe(factory));
    }
    const where = site || caller();
    const idx = hooks.block(id);
    const outer = [signalId, names.splice(0)];
    signalId = id;
    let signal;
    try {
      signal = factory(state, idx);
    } catch (e) {
      // Where to report a thrown value that carries no place of its own.
      failedAt = site;
      throw e;
    } finally {
      signalId = outer[0];
      names.push(...outer[1]);
    }
    if (signal === null || typeof signal !== 'object' || typeof signal.update !== 'function') {
      throw apiError(new TypeError("flux('" + id + "', factory): the factory must return an object with an update(sr) function, not " + describe(signal)), site);
    }
    registry.delete(id);
    registry.set(id, { signal, where });
    return signal;
  }

  // Units: each keeps its state in slots of its own, found again on every reload by a key
  // that names where it stands in the code. The instrumentation wraps every call that makes
  // units in __kw(name, () => call) (crates/jit/src/units.rs); the key is the signal's id,
  // those names from the outside in, and the unit's kind, with #n for repeats.
  let signalId = '';
  let failedAt = '';
  const names = [];
  const seen = new Map();
  let making = null;
  function kw(name, make) {
    names.push(name);
    try {
      return make();
    } finally {
      names.pop();
    }
  }
  function unitKey(kind) {
    const base = signalId + '\u0001' + names.filter((n) => n !== '').join('/') + '\u0001' + kind;
    const n = seen.get(base) || 0;
    seen.set(base, n + 1);
    return n === 0 ? base : base + '#' + n;
  }
  function unitCtor(kind, make) {
    const ctor = function (...args) {
      if (!loading) {
        throw new Error(kind + '() makes a unit: call it while the file loads (in a factory), not in update');
      }
      const outer = making;
      making = [unitKey(kind), 0];
      try {
        return make(...args);
      } finally {
        making = outer;
      }
    };
    Object.defineProperty(ctor, 'name', { value: kind });
    return ctor;
  }
  function take(n, big, what) {
    if (making === null) throw new Error(what + '() gives state to the units of the library only');
    if (typeof n !== 'number' || !(n >= 1 && n <= 1e8)) {
      throw new RangeError(what + '(n): n must be a number of slots from 1 to 1e8, not ' + n);
    }
    const key = making[0] + '\u0001' + making[1]++;
    return hooks.unit(key, Math.ceil(n), big, signalId);
  }
  // A sound file for the library's sampler: [first slot, frames, step].
  function sample(path) {
    if (making === null) throw new Error('sample() gives sound files to the units of the library only');
    if (typeof path !== 'string' || path === '') {
      throw new TypeError('sampler(path): path must be a file name, not ' + describe(path));
    }
    return hooks.sample(path, signalId);
  }
  const slots = (n) => take(n, false, 'slots');
  const buffer = (n) => take(n, true, 'buffer');
  Object.defineProperty(globalThis, '__kw', { value: kw });

  // Adds the library's exports to the API (and the globals): its unit makers wrapped.
  let playUpdate = null;
  function library(lib, ctors, play) {
    playUpdate = play;
    for (const name of Object.keys(lib)) {
      const value = ctors.includes(name) ? unitCtor(name, lib[name]) : lib[name];
      Object.defineProperty(api, name, { value, enumerable: true });
      Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
    }
  }
  const hasLibrary = () => playUpdate !== null;
  // A file that does not name the library gets it the first time it reaches for it.
  for (const name of hooks.libraryNames || []) {
    Object.defineProperty(globalThis, name, {
      get() {
        hooks.loadLibrary();
        return globalThis[name];
      },
      set(value) {
        Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
      },
      configurable: true,
    });
  }

  // Live-control calls, carried out on the running patch once the code has loaded.
  const actions = [];
  function seconds(fade, name) {
    if (fade === undefined) return -1;
    if (typeof fade !== 'number' || !(fade >= 0)) {
      throw new TypeError(name + ': the fade must be a number of seconds, not ' + describe(fade));
    }
    return fade;
  }
  function act(kind, id, fade) {
    if (!loading) throw new Error(kind + '() can only be called while the code loads');
    if (typeof id !== 'string' || id === '') {
      throw new TypeError(kind + '(id, fade?): id must be a non-empty string, not ' + describe(id));
    }
    actions.push([kind, id, seconds(fade, kind)]);
  }
  const stop = (id, fade) => { registry.delete(id); act('stop', id, fade); };
  const mute = (id, fade) => act('mute', id, fade);
  const unmute = (id, fade) => act('unmute', id, fade);
  const solo = (id, fade) => act('solo', id, fade);
  // unsolo(fade?): every signal a solo silenced comes back.
  function unsolo(fade) {
    if (!loading) throw new Error('unsolo() can only be called while the code loads');
    actions.push(['unsolo', '', seconds(fade, 'unsolo')]);
  }
  function gain(x) {
    if (typeof x !== 'number' || !(x >= 0)) throw new TypeError('gain(x): x must be a number >= 0, not ' + describe(x));
    actions.push(['gain', '', x]);
  }

  // tempo(bpm, glide?): the transport's tempo, reached over `glide` seconds; the beat stays
  // continuous. Clamped to 20..=999 bpm by the engine.
  function tempo(bpm, glide) {
    if (!loading) throw new Error('tempo() can only be called while the code loads');
    if (typeof bpm !== 'number' || !(bpm > 0) || bpm === Infinity) {
      throw new TypeError('tempo(bpm, glide?): bpm must be a number above 0, not ' + describe(bpm));
    }
    actions.push(['tempo', '', bpm, seconds(glide, 'tempo')]);
  }

  // The transport's clock: the same values for every signal, frame by frame (render sets
  // them before each call of update).
  const clock = Object.seal({ t: 0, beat: 0, bar: 0, bpm: 120 });
  // MIDI in, frame by frame like the clock: the note playing (last key held), the gate (1
  // while a key is held), its velocity (0 to 1) and the pitch bend (-1 to 1); controllers
  // (cc(n), 0 to 1) and the polyphonic voices (noteOf(i)...) are read from the block's
  // start values and changes (crates/engine/src/midi.rs), at the frame render is at.
  const [RUN, MIDI_AT, MIDI_VALUES, VOICE_NOTE, VOICE_GATE, VOICE_VELOCITY, VOICES] = hooks.clockLayout;
  let midiFrame = 0;
  function midiValue(k) {
    const ck = hooks.clocks;
    const count = ck[MIDI_AT + MIDI_VALUES];
    let v = ck[MIDI_AT + k];
    for (let j = 0, c = MIDI_AT + MIDI_VALUES + 1; j < count; j++, c += 3) {
      if (ck[c] > midiFrame) break;
      if (ck[c + 1] === k) v = ck[c + 2];
    }
    return v;
  }
  const inRange = (i, n) => Number.isInteger(i) && i >= 0 && i < n;
  const midi = { note: 0, gate: 0, velocity: 0, bend: 0 };
  for (const [name, fn] of Object.entries({
    cc: (n) => (inRange(n, 128) ? midiValue(n) : 0),
    noteOf: (i) => (inRange(i, VOICES) ? midiValue(VOICE_NOTE + i) : 0),
    gateOf: (i) => (inRange(i, VOICES) ? midiValue(VOICE_GATE + i) : 0),
    velocityOf: (i) => (inRange(i, VOICES) ? midiValue(VOICE_VELOCITY + i) : 0),
    voices: VOICES,
  })) {
    Object.defineProperty(midi, name, { value: fn, writable: false, enumerable: true });
  }
  Object.seal(midi);

  function clear(fade) {
    if (!loading) throw new Error('clear() can only be called while the file loads');
    registry.clear();
    actions.push(['clear', '', seconds(fade, 'clear')]);
  }

  // play(id, fn, fade?): a signal in one line. fn(s) gets s.t (seconds since it started,
  // kept across reloads), s.dt, s.sr, s.state (its own slots) and s.name; `s` is a fresh
  // object each frame. The per-frame function is the library's __play, so the native tier
  // compiles it together with fn.
  function play(id, fn, fade) {
    if (typeof fn !== 'function') {
      throw new TypeError("play('" + id + "', fn): fn must be a function, not " + describe(fn));
    }
    if (playUpdate === null) hooks.loadLibrary();
    flux(id, (mem, idx) => ({ update: playUpdate(fn, idx, id, mem.subarray(idx, idx + 63)) }));
    if (fade !== undefined) actions.push(['fade', id, seconds(fade, 'play')]);
  }

  function remove(id) {
    if (!loading) throw new Error('remove() can only be called while the file loads');
    return registry.delete(id);
  }

  // Ids of the signals: those already playing (for code sent to a running patch), then
  // those this code defines.
  function list() {
    const ids = (hooks.running || []).filter((id) => !registry.has(id));
    return ids.concat(Array.from(registry.keys()));
  }

  function show(v) {
    if (typeof v === 'string') return v;
    if (typeof v === 'function') return '[function ' + (v.name || 'anonymous') + ']';
    if (v instanceof Error) return String(v);
    if (typeof v === 'object' && v !== null) {
      try {
        return JSON.stringify(v, (k, x) => (ArrayBuffer.isView(x) ? Array.from(x) : x));
      } catch (e) {
        return String(v);
      }
    }
    return String(v);
  }
  // The value code sent to the REPL ends with, as the REPL prints it: at most 3 levels, 20
  // elements or keys a level, 80 characters of a string and 2000 in all; a cycle is
  // `[cycle]`, a getter that throws `[threw]`. Undefined, and the signal flux() returns,
  // are not shown (null). Rust runs it under a time limit, for getters that loop.
  const keysOf = Object.keys;
  const isArrayValue = Array.isArray;
  const protoOf = Object.getPrototypeOf;
  const MAX_SHOWN = 2000;
  function shown(v) {
    if (v === undefined) return null;
    for (const entry of registry.values()) if (entry.signal === v) return null;
    const seen = [];
    let left = MAX_SHOWN;
    function text(s) {
      const q = JSON.stringify(s.length > 80 ? s.slice(0, 80) : s);
      return s.length > 80 ? q.slice(0, -1) + '..."' : q;
    }
    function read(o, k) {
      try {
        return go(o[k], seen.length);
      } catch (e) {
        return '[threw]';
      }
    }
    function items(open, parts, more, close) {
      const body = parts.join(', ') + (more > 0 ? ', ... ' + more + ' more' : '');
      return open + body + close;
    }
    function go(v, depth) {
      if (left <= 0) return '...';
      let out;
      if (typeof v === 'string') out = text(v);
      else if (typeof v === 'function') out = '[function ' + (v.name || 'anonymous') + ']';
      else if (v === null || typeof v !== 'object') out = String(v);
      else if (v instanceof Error) out = String(v.name) + ': ' + String(v.message);
      else {
        for (let i = 0; i < seen.length; i++) if (seen[i] === v) return '[cycle]';
        if (depth >= 3) return isArrayValue(v) ? '[...]' : '{...}';
        seen.push(v);
        const parts = [];
        const typed = isView(v) ? tagOfTyped.call(v) : undefined;
        if (isArrayValue(v) || typed !== undefined) {
          const n = typed === undefined ? v.length : lengthOf.call(v);
          for (let i = 0; i < n && i < 20 && left > 0; i++) parts.push(read(v, i));
          const name = typed === undefined ? '' : typed + '(' + n + ') ';
          out = name + items('[', parts, n - parts.length, ']');
        } else {
          const keys = keysOf(v);
          for (let i = 0; i < keys.length && i < 20 && left > 0; i++) {
            parts.push(keys[i] + ': ' + read(v, keys[i]));
          }
          const p = protoOf(v);
          const ctor = p && p !== Object.prototype && p.constructor;
          const name = typeof ctor === 'function' && ctor.name ? ctor.name + ' ' : '';
          out = name + (keys.length === 0 ? '{}' : items('{ ', parts, keys.length - parts.length, ' }'));
        }
        seen.pop();
      }
      left -= out.length;
      return out;
    }
    const out = go(v, 0);
    return out.length > MAX_SHOWN ? out.slice(0, MAX_SHOWN) + '...' : out;
  }

  function log(...args) {
    hooks.log(args.map(show).join(' '));
  }
  const console = { log, info: log, warn: log, error: log, debug: log };

  // Function tags from the native tier's instrumentation: function -> [id, captures reader].
  const tags = new WeakMap();
  function fx(id, read, f) {
    tags.set(f, [id, read]);
    return f;
  }
  function fxo(obj, methods) {
    for (const [key, id, read] of methods) {
      const f = obj[key];
      if (typeof f === 'function') tags.set(f, [id, read]);
    }
    return obj;
  }
  // Frozen and fixed in place: user code can neither replace nor change them.
  Object.defineProperty(globalThis, '__fx', { value: Object.freeze(fx) });
  Object.defineProperty(globalThis, '__fxo', { value: Object.freeze(fxo) });

  // [id, captured values] of a tagged function, or undefined.
  function tagOf(f) {
    const tag = tags.get(f);
    if (tag === undefined) return undefined;
    try {
      return [tag[0], tag[1]()];
    } catch (e) {
      return undefined;
    }
  }

  // Typed arrays' own getters, taken before user code runs, so it cannot lie about them.
  const typedProto = Object.getPrototypeOf(Float64Array.prototype);
  const getter = (name) => Object.getOwnPropertyDescriptor(typedProto, name).get;
  const bufferOf = getter('buffer');
  const byteOffsetOf = getter('byteOffset');
  const lengthOf = getter('length');
  const tagOfTyped = Object.getOwnPropertyDescriptor(typedProto, Symbol.toStringTag).get;
  const isView = ArrayBuffer.isView;
  const stateBuffer = bufferOf.call(state);

  // What kind of value the native tier is looking at. Typed arrays are never constants:
  // a Float64Array over the state memory is a live view ('view:OFFSET:LEN'), any other
  // can change while playing.
  function classify(v) {
    if (v === state) return 'state';
    if (v === clock) return 'clock';
    if (v === midi) return 'midi';
    if (typeof v === 'function') return 'function';
    if (Array.isArray(v)) return 'array';
    if (isView(v)) {
      const kind = tagOfTyped.call(v);
      if (kind === undefined) return 'other:a DataView';
      if (bufferOf.call(v) === stateBuffer) {
        if (kind === 'Float64Array') return 'view:' + byteOffsetOf.call(v) / 8 + ':' + lengthOf.call(v);
        return 'other:a ' + kind + ' over FLUX_STATE (only Float64Array views of it compile)';
      }
      return 'other:a ' + kind + ' (its elements can change while playing; plain arrays are folded)';
    }
    if (v !== null && typeof v === 'object') {
      const p = Object.getPrototypeOf(v);
      if (p === Object.prototype || p === null) return 'object';
      return 'other:a ' + ((v.constructor && v.constructor.name) || 'object');
    }
    return 'other:' + describe(v);
  }

  function update(i) {
    return active[i].update;
  }

  const api = { flux, clear, remove, list, play, stop, mute, unmute, solo, unsolo, gain, tempo, clock, midi };
  // The API's functions are fixed (the object stays open only for the library's, which are
  // fixed as they come, and is frozen when the load ends).
  for (const name of Object.keys(api)) {
    Object.defineProperty(api, name, { writable: false, configurable: false });
  }
  for (const [name, value] of Object.entries({ ...api, console })) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  }

  // Ends the load: freezes the registry into the list the DSP thread renders.
  function finish() {
    Object.freeze(api);
    loading = false;
    active = [];
    ids = [];
    const out = [];
    for (const [id, entry] of registry) {
      active.push(entry.signal);
      ids.push(id);
      out.push([id, entry.where]);
    }
    return out;
  }

  function badValue(i, v, c) {
    const where = c === undefined ? '' : ' on channel ' + c;
    return new TypeError("update of '" + ids[i] + "' returned " + describe(v) + where +
      '; expected a number or an array of numbers');
  }

  // Renders n frames of signal i into hooks.out, mapped onto ch output channels.
  // Returns the number of channels the signal gave on its first frame.
  function render(i, n, sr, ch) {
    const out = hooks.out;
    const ck = hooks.clocks;
    const run = RUN;
    const s = active[i];
    let first = 0;
    for (let f = 0, o = 0; f < n; f++, o += ch) {
      clock.t = ck[f];
      clock.beat = ck[run + f];
      clock.bar = ck[2 * run + f];
      clock.bpm = ck[3 * run + f];
      midi.note = ck[4 * run + f];
      midi.gate = ck[5 * run + f];
      midi.velocity = ck[6 * run + f];
      midi.bend = ck[7 * run + f];
      midiFrame = f;
      const v = s.update(sr);
      if (typeof v === 'number') {
        for (let c = 0; c < ch; c++) out[o + c] = v;
        if (f === 0) first = 1;
        continue;
      }
      if (v === null || typeof v !== 'object' || typeof v.length !== 'number') throw badValue(i, v);
      const len = v.length;
      if (len === 0) {
        throw new TypeError("update of '" + ids[i] + "' returned an empty array; expected a number or an array of numbers");
      }
      if (len === 1) {
        const x = v[0];
        if (typeof x !== 'number') throw badValue(i, x, 0);
        for (let c = 0; c < ch; c++) out[o + c] = x;
      } else {
        const m = len < ch ? len : ch;
        let c = 0;
        for (; c < m; c++) {
          const x = v[c];
          if (typeof x === 'number') out[o + c] = x;
          else if (x === undefined) out[o + c] = 0;
          else throw badValue(i, x, c);
        }
        for (; c < ch; c++) out[o + c] = 0;
      }
      if (f === 0) first = len;
    }
    return first;
  }

  // `__flux`: frozen, so user code cannot replace render (and silence everything) or
  // any other hook; `library()` freezes the API once the library is in it.
  return Object.freeze({
    api, finish, render, tagOf, classify, update, slots, buffer, sample, library, hasLibrary,
    loadLibrary: () => hooks.loadLibrary(),
    failedAt: () => failedAt, clock, shown,
    actions: () => actions,
    out: hooks.out,
    clocks: hooks.clocks,
  });
})
